#!/usr/bin/env bash
# Rebuilds the CUDA kernels of sparsa-kernels-cuda. The translation units are the .cu files of src/main/cuda
# (one per kernel family or group of families: sparsa_prefill_mma_bf16.cu, sparsa_decode_quest.cu, ...); each
# includes the headers it needs and expands its rows of the kernel table src/main/cuda/sparsa_kernels.def.
# Every unit is compiled with nvcc into its own kernel image, src/main/resources/dev/sparsa/cuda/<unit>.fatbin,
# holding SASS for sm_80 (A100, and Ada through sm_8x compatibility), SASS for sm_90a (H100/H200: every kernel,
# plus the wgmma kernels that exist only there) and PTX (compute_90, without the wgmma kernels' bodies) that
# the driver compiles for newer chips; JOBS units at a time (default 2).
#
# It then writes the manifest sparsa_kernels.manifest (the nvcc version; per image its sha256, the sources it
# was compiled from and a digest of those sources and of its table rows; the sha256 of every source), which
# the Maven build checks (FatbinManifestTest), and regenerates KernelTable.java (every kernel's name, in table
# order, with the image that holds it; KernelTableTest checks it against the table and the units).
# A row belongs to the unit that defines its family's macro (SPARSA_KERNEL_<FAMILY>) and, where the unit
# selects element types (SPARSA_ROWS_OF_<T>(ROW) ROW), whose types include the row's T; a SPARSA_KERNEL_ONE
# row to the unit that includes its header. Each row must land in exactly one unit, and after compiling, the
# entry points ptxas reports for a unit must be exactly its rows.
#
# All outputs are committed, so builds without nvcc work.
# Usage: kernels-cuda/build-fatbin.sh            every unit (several minutes on 2 cores; run it with nice)
#        kernels-cuda/build-fatbin.sh UNIT...    only these units, e.g. sparsa_prefill_wgmma (the development
#                                                build); the manifest keeps the other images' records and
#                                                names those whose sources changed since they were built
# NVCC=/path/to/nvcc picks a compiler, JOBS=n the number of units compiled at once; KEEP=1 keeps nvcc's
# intermediate files (the PTX and the cubin of each target) in target/fatbin/keep-<unit> for comparisons.
# The register/spill report of every kernel goes to target/ptxas-report.txt (target/ptxas-<unit>.txt per unit).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/src/main/cuda
res=$here/src/main/resources/dev/sparsa/cuda
manifest=$res/sparsa_kernels.manifest
table=$here/src/main/java/dev/sparsa/cuda/KernelTable.java
nvcc=${NVCC:-nvcc}
jobs=${JOBS:-2}
work=$here/target/fatbin
mkdir -p "$res" "$work"
export LC_ALL=C

mapfile -t units < <(cd "$src" && ls -- *.cu | sed 's/\.cu$//' | sort)
if [ $# -gt 0 ]; then
  selected=("$@")
  for u in "${selected[@]}"; do
    [ -f "$src/$u.cu" ] || { echo "build-fatbin: no unit $u (units: ${units[*]})" >&2; exit 2; }
  done
else
  selected=("${units[@]}")
fi
version=$("$nvcc" --version | grep -o 'release [0-9.]*, V[0-9.]*')
if [ ${#selected[@]} -lt ${#units[@]} ] && [ -f "$manifest" ] && ! grep -qxF "nvcc=$version" "$manifest"; then
  echo "build-fatbin: the other images were built with $(grep '^nvcc=' "$manifest"), this is $version: rebuild every unit" >&2
  exit 2
fi

# --- which rows of the table each unit holds ---------------------------------------------------------------
# per unit: the families it defines, the element types it selects (none: all), the sources it includes
deps_of() { # the files of src/main/cuda a unit is compiled from (nvcc's dependency list), the table excepted
  (cd "$src" && "$nvcc" -M -std=c++17 "$1.cu") | tr ' \\' '\n\n' | grep -v -e '^/' -e ':$' -e '\.o$' -e '^$' \
    | grep -vx 'sparsa_kernels.def' | sort -u | tr '\n' ' ' | sed 's/ $//'
}
spec=$work/units.tsv
: > "$spec"
for u in "${units[@]}"; do
  fams=$(sed -n 's/^#define SPARSA_KERNEL_\([A-Z0-9_]*\)(.*/\1/p' "$src/$u.cu" | grep -vx ONE | sort -u | tr '\n' ' ' || true)
  types=$(sed -n 's/^#define SPARSA_ROWS_OF_\([A-Za-z0-9_]*\)(ROW) ROW[[:space:]]*$/\1/p' "$src/$u.cu" | sort -u | tr '\n' ' ' || true)
  printf '%s\t%s\t%s\t%s\n' "$u" "$fams" "$types" "$(deps_of "$u")" >> "$spec"
done
rows=$work/rows.tsv # name, unit, the row as written in the table, in table order
sed -n 's/[[:space:]]*$//; /^SPARSA_KERNEL_[A-Z0-9_]*(/p' "$src/sparsa_kernels.def" | awk -F'\t' -v spec="$spec" '
  BEGIN {
    while ((getline line < spec) > 0) {
      split(line, f, "\t"); u = f[1]; n++; unit[n] = u
      fam[u] = " " f[2] " "; typ[u] = " " f[3] " "; dep[u] = " " f[4] " "
    }
  }
  {
    kind = $0; sub(/^SPARSA_KERNEL_/, "", kind); sub(/\(.*/, "", kind)
    args = $0; sub(/^[^(]*\(/, "", args); sub(/\)$/, "", args)
    na = split(args, a, ","); for (i = 1; i <= na; i++) gsub(/^[ \t]+|[ \t]+$/, "", a[i])
    found = ""
    for (i = 1; i <= n; i++) {
      u = unit[i]
      if (kind == "ONE") hit = index(dep[u], " " a[2] " ") > 0
      else hit = index(fam[u], " " kind " ") > 0 && (typ[u] ~ /^ *$/ || index(typ[u], " " a[2] " ") > 0)
      if (hit) found = found " " u
    }
    if (split(found, h, " ") != 1) { print "build-fatbin: row " a[1] " is in " (found == "" ? "no unit" : "units" found) > "/dev/stderr"; bad = 1 }
    print a[1] "\t" h[1] "\t" $0
  }
  END { exit bad }' > "$rows"

# --- compile ------------------------------------------------------------------------------------------------
# sm_90a replaces plain sm_90: the same code for the mma.sync kernels, and wgmma/setmaxnreg for sparsa_wg_*
archs="-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90"
compile() {
  local u=$1 keep=
  [ -n "${KEEP:-}" ] && { rm -rf "$work/keep-$u"; mkdir -p "$work/keep-$u"; keep="-keep -keep-dir $work/keep-$u"; }
  # shellcheck disable=SC2086
  if "$nvcc" -fatbin -O3 -std=c++17 -Xfatbin=-compress-all $archs -Xptxas -v $keep -o "$work/$u.fatbin" "$src/$u.cu" \
      2> "$work/ptxas-$u.txt"; then
    echo "build-fatbin: compiled $u"
  else
    tail -20 "$work/ptxas-$u.txt" >&2
    echo "build-fatbin: $u failed (report: $work/ptxas-$u.txt)" >&2
    return 1
  fi
}
export -f compile
export nvcc archs src work KEEP
# largest image first, so that the long compiles start at once
mapfile -t order < <(for u in "${selected[@]}"; do echo "$(stat -c %s "$res/$u.fatbin" 2>/dev/null || echo 0) $u"; done | sort -rn | cut -d' ' -f2)
printf '%s\n' "${order[@]}" | xargs -P "$jobs" -I{} bash -c 'compile "$1"' _ {}
for u in "${selected[@]}"; do
  expected=$(awk -F'\t' -v u="$u" '$2 == u { print $1 }' "$rows" | sort)
  actual=$(grep -o "Compiling entry function '[A-Za-z0-9_]*' for 'sm_90a'" "$work/ptxas-$u.txt" | cut -d"'" -f2 | sort -u)
  if [ "$expected" != "$actual" ]; then
    echo "build-fatbin: the entry points of $u differ from its rows of the table:" >&2
    diff <(echo "$expected") <(echo "$actual") >&2 || true
    exit 1
  fi
done
for u in "${selected[@]}"; do
  mv "$work/$u.fatbin" "$res/$u.fatbin"
  cp "$work/ptxas-$u.txt" "$here/target/ptxas-$u.txt"
done
for f in "$res"/*.fatbin; do # images of units that no longer exist
  [ -f "$src/$(basename "$f" .fatbin).cu" ] || { rm -f "$f"; echo "build-fatbin: removed $(basename "$f")"; }
done
(cd "$here/target" && cat $(for u in "${units[@]}"; do [ -f "ptxas-$u.txt" ] && echo "ptxas-$u.txt"; done) > ptxas-report.txt)

# --- manifest -------------------------------------------------------------------------------------------------
sha() { sha256sum "$1" | cut -d' ' -f1; }
inputs() { # digest of a unit's inputs: "file=sha256" per source it includes, then its rows as written in the table
  local u=$1 f
  { for f in $(awk -F'\t' -v u="$u" '$1 == u { print $4 }' "$spec"); do echo "$f=$(sha "$src/$f")"; done
    awk -F'\t' -v u="$u" '$2 == u { print $3 }' "$rows"; } | sha256sum | cut -d' ' -f1
}
old=$work/manifest.old
cp "$manifest" "$old" 2>/dev/null || : > "$old"
stale=()
{
  echo "# Generated by kernels-cuda/build-fatbin.sh; checked by FatbinManifestTest. Do not edit."
  echo "nvcc=$version"
  echo "targets=sm_80 sm_90a compute_90"
  for u in "${units[@]}"; do
    [ -f "$res/$u.fatbin" ] || { echo "build-fatbin: no image of $u yet: run build-fatbin.sh $u" >&2; exit 1; }
    echo "image.$u.sha256=$(sha "$res/$u.fatbin")"
    if printf '%s\n' "${selected[@]}" | grep -qxF "$u"; then
      echo "image.$u.sources=$(awk -F'\t' -v u="$u" '$1 == u { print $4 }' "$spec")"
      echo "image.$u.inputs=$(inputs "$u")"
    else # not rebuilt: its record stays as it was built
      grep -e "^image\.$u\.sources=" -e "^image\.$u\.inputs=" "$old" || { echo "build-fatbin: no record of $u: rebuild it" >&2; exit 1; }
      [ "$(grep "^image\.$u\.inputs=" "$old" | cut -d= -f2)" = "$(inputs "$u")" ] || stale+=("$u")
    fi
  done
  (cd "$src" && for f in $(ls | sort); do echo "source.$f=$(sha "$f")"; done)
} > "$work/manifest.new"
mv "$work/manifest.new" "$manifest"

# --- KernelTable.java -----------------------------------------------------------------------------------------
{
  echo "package dev.sparsa.cuda;"
  echo
  echo "import java.util.List;"
  echo
  echo "/**"
  echo " * Every kernel by name, in the order of the kernel table {@code src/main/cuda/sparsa_kernels.def}, with the"
  echo " * kernel image that holds it: one image per translation unit {@code src/main/cuda/<image>.cu}, loaded as the"
  echo " * resource {@code dev/sparsa/cuda/<image>.fatbin}. Generated from the table and the units by"
  echo " * kernels-cuda/build-fatbin.sh and checked against them by KernelTableTest; do not edit."
  echo " */"
  echo "final class KernelTable {"
  echo "    /** The images, one per translation unit, by name. */"
  echo "    static final List<String> IMAGES = List.of("
  printf '            "%s",\n' "${units[@]}" | sed '$ s/,$/);/'
  echo
  echo "    /** The kernels, in table order, each with its image. */"
  echo "    static final List<Kernel> KERNELS = List.of("
  awk -F'\t' '{ printf "            new Kernel(\"%s\", \"%s\"),\n", $1, $2 }' "$rows" | sed '$ s/,$/);/'
  echo
  echo "    /** The kernels' names, in table order. */"
  echo "    static final List<String> NAMES = KERNELS.stream().map(Kernel::name).toList();"
  echo
  echo "    /** A kernel's name (its symbol) and the image that holds it. */"
  echo "    record Kernel(String name, String image) {"
  echo "    }"
  echo
  echo "    private KernelTable() {"
  echo "    }"
  echo "}"
} > "$table"

for u in "${units[@]}"; do
  printf 'build-fatbin: %-28s %5d KiB, %2d kernels\n' "$u" $(( $(stat -c %s "$res/$u.fatbin") / 1024 )) \
    "$(awk -F'\t' -v u="$u" '$2 == u' "$rows" | wc -l)"
done
echo "build-fatbin: manifest and KernelTable.java written ($version)"
grep -hE 'spill' "$here/target/ptxas-report.txt" | grep -v ' 0 bytes spill' | head -5 || true
if [ ${#stale[@]} -gt 0 ]; then
  echo "build-fatbin: stale images (their sources or rows changed since they were built): ${stale[*]}; run build-fatbin.sh ${stale[*]}" >&2
  exit 3
fi
