# The small `lib` that clan.nix, machine modules and service modules see.
# There is no nixpkgs here: these are clan's own definitions. Option declarations
# are plain data (`_type = "option"`) that eval.nix turns into clan's option IR;
# priorities and conditions stay as data too, so that clan (Rust) does the merging.
let
  inherit (builtins)
    attrNames attrValues concatLists concatStringsSep elem filter foldl' genList
    head isAttrs isList length listToAttrs mapAttrs tail;

  mkType = name: extra: { _type = "option-type"; inherit name; } // extra;
  intBetween = min: max: mkType "intBetween" { inherit min max; };

  lib = rec {
    # --- priorities and conditions -------------------------------------------
    mkOverride = priority: content: { _type = "override"; inherit priority content; };
    mkOptionDefault = mkOverride 1500;
    mkDefault = mkOverride 1000;
    mkImageMediaOverride = mkOverride 60;
    mkForce = mkOverride 50;
    mkVMOverride = mkOverride 10;
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };

    # --- options ---------------------------------------------------------------
    mkOption = attrs: { _type = "option"; type = types.unspecified; } // attrs;
    mkEnableOption = name: mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = "Whether to enable ${name}.";
    };
    isOption = v: isAttrs v && (v._type or null) == "option";
    isType = v: isAttrs v && (v._type or null) == "option-type";
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    literalMD = text: { _type = "literalMD"; inherit text; };
    mdDoc = s: s;

    types = rec {
      bool = mkType "bool" { };
      str = mkType "str" { };
      nonEmptyStr = mkType "strMatching" { pattern = "(.|\n)*[^[:space:]](.|\n)*"; jsPattern = "\\S"; };
      singleLineStr = mkType "strMatching" { pattern = "[^\n\r]*"; };
      lines = mkType "lines" { };
      commas = mkType "str" { };
      separatedString = _sep: mkType "str" { };
      envVar = mkType "str" { };
      int = mkType "int" { };
      ints = {
        between = intBetween;
        positive = mkType "intPositive" { };
        unsigned = mkType "intUnsigned" { };
        u8 = intBetween 0 255;
        u16 = intBetween 0 65535;
        u32 = intBetween 0 4294967295;
        s8 = intBetween (-128) 127;
        s16 = intBetween (-32768) 32767;
        s32 = intBetween (-2147483648) 2147483647;
      };
      port = mkType "port" { };
      float = mkType "float" { };
      number = mkType "number" { };
      numbers.between = min: max: mkType "numberBetween" { inherit min max; };
      enum = values: mkType "enum" { inherit values; };
      strMatching = pattern: mkType "strMatching" { inherit pattern; };
      listOf = elemType: mkType "listOf" { inherit elemType; };
      nonEmptyListOf = elemType: mkType "listOf" { inherit elemType; nonEmpty = true; };
      attrsOf = elemType: mkType "attrsOf" { inherit elemType; };
      lazyAttrsOf = attrsOf;
      nullOr = elemType: mkType "nullOr" { inherit elemType; };
      uniq = t: t;
      unique = _: t: t;
      submodule = module: submoduleWith { modules = [ module ]; };
      submoduleWith = { modules, ... }: mkType "submodule" { inherit modules; };
      either = left: right: mkType "either" { inherit left right; };
      oneOf = ts: mkType "oneOf" { types = ts; };
      coercedTo = _from: _f: to: to;
      path = mkType "path" { };
      package = mkType "package" { };
      functionTo = elemType: mkType "functionTo" { inherit elemType; };
      anything = mkType "anything" { };
      unspecified = mkType "anything" { };
      raw = mkType "anything" { };
      attrs = mkType "attrs" { };
      deferredModule = mkType "anything" { };
    };

    # --- the usual helpers ------------------------------------------------------
    inherit attrNames attrValues concatStringsSep elem filter foldl' head isAttrs isList
      length listToAttrs mapAttrs tail;
    inherit (builtins) concatMap hasAttr toJSON fromJSON toString isString isInt isBool
      isFunction replaceStrings split match substring stringLength removeAttrs
      intersectAttrs catAttrs zipAttrsWith all any readFile pathExists;
    id = x: x;
    const = x: _: x;
    flatten = x: if isList x then concatMap flatten x else [ x ];
    unique = foldl' (acc: e: if elem e acc then acc else acc ++ [ e ]) [ ];
    optional = cond: elem: if cond then [ elem ] else [ ];
    optionals = cond: list: if cond then list else [ ];
    optionalString = cond: s: if cond then s else "";
    optionalAttrs = cond: as: if cond then as else { };
    nameValuePair = name: value: { inherit name value; };
    genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
    mapAttrsToList = f: as: map (n: f n as.${n}) (attrNames as);
    mapAttrs' = f: as: listToAttrs (mapAttrsToList f as);
    filterAttrs = pred: as: listToAttrs (concatMap (n: if pred n as.${n} then [ (nameValuePair n as.${n}) ] else [ ]) (attrNames as));
    concatMapStringsSep = sep: f: list: concatStringsSep sep (map f list);
    concatMapStrings = f: list: concatStringsSep "" (map f list);
    concatLines = list: concatStringsSep "" (map (l: l + "\n") list);
    hasPrefix = pre: s: builtins.substring 0 (builtins.stringLength pre) s == pre;
    hasSuffix = suf: s:
      let ls = builtins.stringLength s; lf = builtins.stringLength suf;
      in lf <= ls && builtins.substring (ls - lf) lf s == suf;
    removePrefix = pre: s: if hasPrefix pre s then builtins.substring (builtins.stringLength pre) (-1) s else s;
    toList = x: if isList x then x else [ x ];
    range = first: last: if first > last then [ ] else genList (n: first + n) (last - first + 1);
    recursiveUpdate = a: b: a // mapAttrs (n: v: if isAttrs v && isAttrs (a.${n} or null) then recursiveUpdate a.${n} v else v) b;
    attrByPath = path: default: set:
      if path == [ ] then set
      else if isAttrs set && set ? ${head path} then attrByPath (tail path) default set.${head path}
      else default;
    setAttrByPath = path: value: if path == [ ] then value else { ${head path} = setAttrByPath (tail path) value; };
    getAttrFromPath = path: set: attrByPath path (throw "attribute path '${concatStringsSep "." path}' does not exist") set;
    warn = msg: v: builtins.trace "warning: ${msg}" v;
    trivial = { inherit id const warn; };
    strings = { inherit concatStringsSep concatMapStringsSep hasPrefix hasSuffix removePrefix optionalString; };
    lists = { inherit flatten unique optional optionals toList range; };
    attrsets = { inherit mapAttrsToList filterAttrs genAttrs recursiveUpdate attrByPath setAttrByPath getAttrFromPath nameValuePair; };
  };
in
lib
