# A stand-in for `import nixpkgs { system, overlays }`: only the attributes the flake uses,
# each recording what it was given so a check can inspect it.
{ system, overlays ? [ ] }:
let
  isLinux = builtins.match ".*-linux" system != null;
  package = name: { pname = name; type = "stand-in-package"; outPath = "/nix/store/stand-in-${name}"; };
  base = {
    inherit system;
    stdenv.isLinux = isLinux;
    makeRustPlatform = { cargo, rustc }: {
      buildRustPackage = args:
        let drv = args // { builtWith = rustc; };
        in drv // { overrideAttrs = f: drv // f drv; };
    };
    mkShell = args: args // { isShell = true; };
    dockerTools.buildLayeredImage = args: args // { isImage = true; };
    bashInteractive = package "bash";
    coreutils = package "coreutils";
    cargo-fuzz = package "cargo-fuzz";
    cargo-llvm-cov = package "cargo-llvm-cov";
    cargo-tarpaulin = package "cargo-tarpaulin";
    cargo-nextest = package "cargo-nextest";
    llvm = package "llvm";
    valgrind = package "valgrind";
    qemu = package "qemu";
    pkgsCross.s390x.stdenv.cc = package "s390x-unknown-linux-gnu-cc";
    pkgsCross.s390x.glibc = package "s390x-glibc";
  };
in
builtins.foldl' (pkgs: overlay: pkgs // overlay pkgs pkgs) base overlays
