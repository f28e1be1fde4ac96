# The few nixpkgs `lib` functions the flake uses, written out so the flake can be evaluated
# without nixpkgs (which cannot be downloaded on the machines that check it).
{
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  optionals = condition: list: if condition then list else [ ];
  optionalAttrs = condition: attrs: if condition then attrs else { };
  mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (builtins.attrNames attrs);
  getExe = drv: "/nix/store/stand-in-${drv.pname}/bin/${drv.meta.mainProgram}";
}
