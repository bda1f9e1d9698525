// Sparsa: expands the kernel table sparsa_kernels.def in a translation unit (a sparsa_*.cu file of this
// folder). The unit defines the family macros of the rows it compiles, SPARSA_KERNEL_<FAMILY>(name, ...)
// -> SPARSA_<FAMILY>_NAMED(name, ...), then includes this file, which defines every family macro the unit
// left undefined to nothing, so that each row of the table becomes an entry point in exactly one unit.
// SPARSA_KERNEL_ONE rows always expand to nothing: those kernels are defined in full by their header, and
// they land in the unit that includes it. No include guard: included once per unit, at its end.
#ifndef SPARSA_KERNEL_TC
#define SPARSA_KERNEL_TC(NAME, T, D, DV, ROWS)
#endif
#ifndef SPARSA_KERNEL_TCG
#define SPARSA_KERNEL_TCG(NAME, T, D, DV)
#endif
#ifndef SPARSA_KERNEL_WG
#define SPARSA_KERNEL_WG(NAME, T, D)
#endif
#ifndef SPARSA_KERNEL_WG8
#define SPARSA_KERNEL_WG8(NAME, D)
#endif
#ifndef SPARSA_KERNEL_F32
#define SPARSA_KERNEL_F32(NAME, D, DV)
#endif
#ifndef SPARSA_KERNEL_DECODE
#define SPARSA_KERNEL_DECODE(NAME, T, D)
#endif
#ifndef SPARSA_KERNEL_DECODE_MMA
#define SPARSA_KERNEL_DECODE_MMA(NAME, T, D)
#endif
#ifndef SPARSA_KERNEL_DECODE_MMA8
#define SPARSA_KERNEL_DECODE_MMA8(NAME, QS, T, D)
#endif
#ifndef SPARSA_KERNEL_QUEST
#define SPARSA_KERNEL_QUEST(NAME, T, D)
#endif
#ifndef SPARSA_KERNEL_QUEST8
#define SPARSA_KERNEL_QUEST8(NAME, QS, D)
#endif
#ifndef SPARSA_KERNEL_DECODE_SCORES
#define SPARSA_KERNEL_DECODE_SCORES(NAME, T, D)
#endif
#ifndef SPARSA_KERNEL_DECODE_SCORES8
#define SPARSA_KERNEL_DECODE_SCORES8(NAME, QS, D)
#endif
#define SPARSA_KERNEL_ONE(NAME, HEADER)
#include "sparsa_kernels.def"
