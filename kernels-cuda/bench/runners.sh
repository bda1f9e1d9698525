# Sourced by the GPU scripts in this folder: how to start Java and the GPU tests.
#   java_main [JVM flags] CLASS [args]
#                              a main class of the project (the benchmarks jar's class path)
#   gpu_tests CLASS [METHOD]   the GPU tests of one test class (all of its methods, or those whose
#                              name starts with METHOD); with no CLASS every GPU test
#   images_dir                 the folder of the committed kernel images (<unit>.fatbin)
# By default through the repository's launcher (./sparsa: JDK 25 and Maven on the machine). A folder
# holding java.sh and test.sh runners next to these scripts (a prepared runtime and class path for a
# machine without Maven) takes their place: java.sh CLASS args, test.sh [JUnit console options].
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." 2>/dev/null && pwd)
if [ -f "$here/java.sh" ]; then
  java_main() { bash "$here/java.sh" "$@"; }
  gpu_tests() {
    local sel=()
    [ -n "${1:-}" ] && sel+=(--include-classname ".*$1")
    [ -n "${2:-}" ] && sel+=(--include-methodname ".*$2.*")
    # one line as each test starts and ends: the tree form prints only when the run ends, so a run killed by a
    # time limit (a kernel that never returns) would print nothing; here its last STARTED line names the test
    bash "$here/test.sh" --include-tag gpu --details=testfeed "${sel[@]}"
  }
  images_dir() { dirname "$(ls "$here"/classes/*/dev/sparsa/cuda/sparsa_kernels.manifest | head -1)"; }
else
  java_main() { "$repo/sparsa" run "$@"; }
  gpu_tests() {
    local t=()
    [ -n "${1:-}" ] && t+=("-Dtest=$1${2:+#$2*}" -Dsurefire.failIfNoSpecifiedTests=false)
    (cd "$repo" && ./sparsa test --gpu -q -Dmaven.javadoc.skip=true -Dmaven.source.skip=true "${t[@]}")
  }
  images_dir() { echo "$repo/kernels-cuda/src/main/resources/dev/sparsa/cuda"; }
fi
