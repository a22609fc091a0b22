# Sourced by bench/ab.sh and bench/fanout.sh: the build of a base revision for an A/B.
#
#   build_base REV CARGO-BUILD-ARGS...   # e.g. build_base 05ef5ef -p wirecall-bench
#
# Keeps a git worktree at REV in target/ab/base-src (kept between runs while it is at REV,
# so its build is too) and builds it in release into target/ab/base-target; binaries land
# in target/ab/base-target/release.
build_base() {
  local rev=$1 want
  shift
  want=$(git rev-parse "$rev^{commit}")
  mkdir -p target/ab
  if [ "$(git -C target/ab/base-src rev-parse HEAD 2>/dev/null)" != "$want" ]; then
    git worktree remove --force target/ab/base-src 2>/dev/null || rm -rf target/ab/base-src
    git worktree prune
    git worktree add -q --detach target/ab/base-src "$want"
  fi
  (cd target/ab/base-src && CARGO_TARGET_DIR="$PWD/../base-target" cargo build --release -q "$@")
}
