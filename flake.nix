{
  description = "runner: every dynamic analysis a Rust workspace needs, with one command";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = { self, nixpkgs, rust-overlay }:
    let
      inherit (nixpkgs) lib;

      # The one pin: rust-overlay reads its [toolchain] table (channel, profile, components);
      # nothing here repeats the date or the component list.
      pinFile = ./pin/toolchain.toml;
      pin = builtins.fromTOML (builtins.readFile pinFile);
      version = (builtins.fromTOML (builtins.readFile ./runner/Cargo.toml)).package.version;

      linuxSystems = [ "x86_64-linux" "aarch64-linux" ];
      systems = linuxSystems ++ [ "aarch64-darwin" "x86_64-darwin" ];

      forSystems = names: f: lib.genAttrs names (system: f (pkgsFor system));
      pkgsFor = system: import nixpkgs {
        inherit system;
        overlays = [ rust-overlay.overlays.default ];
      };

      toolchainFor = pkgs: pkgs.rust-bin.fromRustupToolchainFile pinFile;

      # runner is built with the pinned toolchain too, so the flake needs no second Rust.
      runnerFor = pkgs:
        let
          toolchain = toolchainFor pkgs;
          rustPlatform = pkgs.makeRustPlatform { cargo = toolchain; rustc = toolchain; };
        in
        rustPlatform.buildRustPackage {
          pname = "runner";
          inherit version;
          src = self;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "--package" "runner" ];
          # The end-to-end tests need network and the tools; `checks` runs the unit tests.
          doCheck = false;
          meta.mainProgram = "runner";
        };

      # What the stages call, beside the toolchain. valgrind, qemu-user and the s390x cross
      # linker exist for Linux only: on macOS the Miri, fuzz and coverage stages work, the
      # valgrind and native cross-endian stages do not.
      analysisToolsFor = pkgs:
        [
          pkgs.cargo-fuzz
          pkgs.cargo-llvm-cov
          pkgs.cargo-tarpaulin
          pkgs.cargo-nextest
          pkgs.llvm
        ]
        ++ lib.optionals pkgs.stdenv.isLinux [
          pkgs.valgrind
          pkgs.qemu
          pkgs.pkgsCross.s390x.stdenv.cc
        ];

      # Tells runner it is inside the pinned environment (it then checks rustc against the pin).
      hermeticEnv = {
        RUNNER_HERMETIC = "nix";
        RUNNER_PROVENANCE = "nix flake, revision ${self.shortRev or "dirty"}";
      };
      # The cross stage on Linux: nixpkgs' s390x cross compiler as cargo's linker, and its
      # glibc as qemu-user's library root.
      crossEnvFor = pkgs: lib.optionalAttrs pkgs.stdenv.isLinux {
        CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_LINKER =
          "${pkgs.pkgsCross.s390x.stdenv.cc}/bin/s390x-unknown-linux-gnu-cc";
        QEMU_LD_PREFIX = "${pkgs.pkgsCross.s390x.glibc}";
      };

    in
    {
      packages = forSystems systems (pkgs:
        { default = runnerFor pkgs; }
        // lib.optionalAttrs pkgs.stdenv.isLinux {
          # The same closure as the dev shell, as an image for Nix users.
          image = pkgs.dockerTools.buildLayeredImage {
            name = "runner";
            tag = version;
            contents = [ (runnerFor pkgs) (toolchainFor pkgs) pkgs.bashInteractive pkgs.coreutils ]
              ++ analysisToolsFor pkgs;
            config = {
              Entrypoint = [ "runner" ];
              Cmd = [ "all" ];
              WorkingDir = "/src";
              Env = lib.mapAttrsToList (name: value: "${name}=${value}") hermeticEnv;
            };
          };
        });

      apps = forSystems systems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe (runnerFor pkgs);
        };
      });

      devShells = forSystems systems (pkgs: {
        default = pkgs.mkShell ({
          packages = [ (toolchainFor pkgs) (runnerFor pkgs) ] ++ analysisToolsFor pkgs;
        } // hermeticEnv // crossEnvFor pkgs);
      });

      checks = forSystems systems (pkgs: {
        runner-unit-tests = (runnerFor pkgs).overrideAttrs (_: {
          doCheck = true;
          cargoTestFlags = [ "--package" "runner" "--lib" ];
        });
      });

      # The pinned cargo tool versions, for tools outside nixpkgs' own versions to compare.
      lib.pinnedTools = pin.tools;
    };
}
