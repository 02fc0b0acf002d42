#!/usr/bin/env bash
# The toolchain rust-toolchain.toml names, under that name. Nothing can be fetched here, so
# when rustup does not know the name but its stable toolchain is that very version, the name
# is made to point at it, as this kind of machine is provisioned (`rustup toolchain link`
# refuses release names); any other mismatch is an error saying what to install.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

want=$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)
command -v rustup >/dev/null || die "rustup is not installed (the project needs Rust $want)"
if rustup toolchain list | grep -q "^$want"; then exit 0; fi
have=$(RUSTUP_TOOLCHAIN=stable rustc --version 2>/dev/null | awk '{print $2}')
[ "$have" = "$want" ] || die "Rust $want is needed (rust-toolchain.toml); rustup has ${have:-no stable toolchain}"
host=$(RUSTUP_TOOLCHAIN=stable rustc -vV | sed -n 's/^host: //p')
toolchains="${RUSTUP_HOME:-$HOME/.rustup}/toolchains"
say "rustup toolchain $want is stable ($have): naming it so"
ln -s "$toolchains/stable-$host" "$toolchains/$want-$host"
