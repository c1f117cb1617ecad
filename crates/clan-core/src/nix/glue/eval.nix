# Evaluation glue between a clan directory and the `clan` binary. Written out by the
# binary that embeds it (so it always matches that binary); `schema` below is checked
# on every call. It only *collects data*: merging, validation and error reporting
# are done by clan itself.
#
#   query = "inventory": meta, inventory, names of machine modules, user service modules
#                        (manifest + role interfaces as option IR).
#   query = "machines":  for the machines and perInstance calls listed in argsFile, each
#                        machine's configuration definitions, in order, with their source.
#   query = "nixos":     the modules of the one machine in argsFile, for NixOS to evaluate.
{ clanDir, query, argsFile ? "" }:
let
  schema = "clan-glue-1";
  lib = import ./lib.nix;
  inherit (builtins) attrNames concatMap filter isAttrs isFunction isList isPath
    listToAttrs mapAttrs pathExists readDir;

  args = if argsFile == "" then { } else builtins.fromJSON (builtins.readFile argsFile);

  # `pkgs` does not exist in clan: a module that touches it gets this message.
  noPkgs = throw ''
    `pkgs` is not available when clan evaluates a clan: there is no nixpkgs here.
    Keep package references out of clan.core settings, or guard them so that clan does not need them.'';

  clanFile = clanDir + "/clan.nix";
  rawClan = if pathExists clanFile then import clanFile else { };
  clan = if isFunction rawClan then rawClan { inherit lib; self = { outPath = clanDir; }; } else rawClan;

  # ---------------------------------------------------------------------------
  # Data out: functions become markers, paths become strings (never copied into the
  # store), false conditions disappear, priorities and merges stay as data.
  # Returns a list: a value may discharge into zero (mkIf false) or several (mkMerge).
  discharge = v:
    if isAttrs v && v ? _type then
      if v._type == "if" then (if v.condition then discharge v.content else [ ])
      else if v._type == "merge" then concatMap discharge v.contents
      else if v._type == "override" then
        map (c: { _type = "override"; inherit (v) priority; content = c; }) (discharge v.content)
      else [ (cleanAttrs v) ]
    else [ (clean v) ];
  cleanAttrs = v: listToAttrs (concatMap (n:
    let ds = discharge v.${n}; in
    if ds == [ ] then [ ]
    else [ { name = n; value = if builtins.length ds == 1 then builtins.head ds else { _type = "merge"; contents = ds; }; } ])
    (attrNames v));
  clean = v:
    if isFunction v then { _type = "function"; }
    else if isPath v then toString v
    else if isList v then map clean v
    else if isAttrs v then
      (if v ? _type then (let ds = discharge v; in if ds == [ ] then { _type = "absent"; } else if builtins.length ds == 1 then builtins.head ds else { _type = "merge"; contents = ds; })
       else cleanAttrs v)
    else v;

  # ---------------------------------------------------------------------------
  # Option declarations -> clan's option IR (see options.rs).
  typeIR = t:
    if !(lib.isType t) then { name = "invalid"; }
    else if t.name == "listOf" || t.name == "attrsOf" || t.name == "nullOr" || t.name == "functionTo" then
      { inherit (t) name; elem = typeIR t.elemType; } // (if t ? nonEmpty then { nonEmpty = true; } else { })
    else if t.name == "submodule" then
      { name = "submodule"; options = concatOptions (map (m: moduleOptions m { name = "‹name›"; }) t.modules); }
    else if t.name == "either" then { name = "oneOf"; types = [ (typeIR t.left) (typeIR t.right) ]; }
    else if t.name == "oneOf" then { name = "oneOf"; types = map typeIR t.types; }
    else removeAttrs t [ "_type" ];
  optionIR = o:
    let hasText = o ? defaultText; in
    {
      _option = true;
      type = typeIR o.type;
      description = o.description or null;
      hasDefault = o ? default;
      default = if o ? default && !hasText then clean o.default else null;
      defaultIsJson = o ? default && !hasText;
      defaultText = if hasText then clean o.defaultText else null;
      meta = if o ? meta then clean o.meta else null;
      visible = o.visible or true;
      readOnly = o.readOnly or false;
    };
  groupIR = g: mapAttrs (_: v:
    if lib.isOption v then optionIR v
    else if isAttrs v then { _group = groupIR v; }
    else { _invalid = true; }) g;
  concatOptions = groups: { _group = builtins.foldl' (acc: g: acc // g._group) { } groups; };
  # Options declared by a module (function or attribute set), following `imports`.
  moduleOptions = m: extraArgs:
    let
      called =
        if isPath m || builtins.isString m then moduleOptions (import m) extraArgs
        else if isFunction m then
          m ({ inherit lib; config = throw "`config` is not available in an option declaration"; options = { }; pkgs = noPkgs; } // extraArgs)
        else m;
      self = if called ? _group then called else { _group = groupIR (called.options or { }); };
      imported = map (i: moduleOptions i extraArgs) (if called ? _group then [ ] else called.imports or [ ]);
    in
    concatOptions ([ self ] ++ imported);

  # ---------------------------------------------------------------------------
  # User service modules: modules/<name>/default.nix, and clan.modules in clan.nix.
  modulesDir = clanDir + "/modules";
  dirModules =
    if pathExists modulesDir then
      let entries = readDir modulesDir; in
      listToAttrs (concatMap (n:
        if entries.${n} == "directory" && pathExists (modulesDir + "/${n}/default.nix")
        then [ { name = n; value = { file = modulesDir + "/${n}/default.nix"; module = import (modulesDir + "/${n}/default.nix"); }; } ]
        else [ ]) (attrNames entries))
    else { };
  inlineModules = mapAttrs (n: m: { file = clanFile; module = m; }) (clan.modules or { });
  userModules = mapAttrs (_: e: e // {
    module = if isFunction e.module then e.module { inherit lib; } else e.module;
  }) (dirModules // inlineModules);

  moduleInfo = e:
    let m = e.module; in
    {
      file = toString e.file;
      class = m._class or null;
      manifest = clean (m.manifest or { });
      roles = mapAttrs (_: role: {
        description = role.description or null;
        interface = if role ? interface then moduleOptions role.interface { meta = clanMeta; } else { _group = { }; };
        perInstance = role ? perInstance;
      }) (m.roles or { });
      perMachine = m ? perMachine;
    };

  clanMeta = (clan.inventory.meta or { }) // (clan.meta or { });

  # ---------------------------------------------------------------------------
  # A machine's NixOS-style configuration as a list of definitions. `config` given to
  # the modules is a lazy merge of all of them; what clan reads is the cleaned data.
  pushDown = v:
    if isAttrs v && v ? _type then
      if v._type == "merge" then concatMap pushDown v.contents
      else if v._type == "if" || v._type == "override" then
        map (c:
          if isPlain c then mapAttrs (_: x: v // { content = x; }) c
          else v // { content = c; }) (pushDown v.content)
      else [ v ]
    else [ v ];
  isPlain = v: isAttrs v && !(v ? _type);
  mergeValues = defs:
    let pushed = concatMap pushDown defs; in
    if pushed != [ ] && builtins.all isPlain pushed
    then builtins.zipAttrsWith (_: mergeValues) pushed
    else mergeLeaf pushed;
  unwrap = prio: v:
    if isAttrs v && v ? _type then
      if v._type == "if" then (if v.condition then unwrap prio v.content else [ ])
      else if v._type == "override" then unwrap v.priority v.content
      else if v._type == "merge" then concatMap (unwrap prio) v.contents
      else [ { inherit prio; value = v; } ]
    else [ { inherit prio; value = v; } ];
  mergeLeaf = defs:
    let
      all = concatMap (unwrap 100) defs;
      best = builtins.foldl' (m: d: if d.prio < m then d.prio else m) 10000 all;
      winners = map (d: d.value) (filter (d: d.prio == best) all);
    in
    if winners == [ ] then throw "this option has no definition"
    else if builtins.all isList winners then builtins.concatLists winners
    else if builtins.all isPlain winners then mergeValues winners
    else if builtins.all (w: w == builtins.head winners) winners then builtins.head winners
    else throw "conflicting definitions (run clan for the places that define them)";

  # Modules: function | attrset | path, with options/config/imports or config shorthand.
  collect = source: m: extraArgs: config:
    let
      loaded = if isPath m || builtins.isString m then import m else m;
      src = if isPath m || builtins.isString m then toString m else source;
      called = if isFunction loaded then loaded ({ inherit lib config; pkgs = noPkgs; options = { }; modulesPath = "/modules"; } // extraArgs) else loaded;
      structured = called ? config || called ? options || called ? imports;
      own = if structured then called.config or { } else removeAttrs called [ "_class" "_file" "key" ];
      optionDefaults = if called ? options then optionDefaultsOf called.options else null;
    in
    [ { source = src; value = own; } ]
    ++ (if optionDefaults == null then [ ] else [ { source = "${src} (option defaults)"; value = optionDefaults; } ])
    ++ concatMap (i: collect src i extraArgs config) (if structured then called.imports or [ ] else [ ]);
  optionDefaultsOf = opts: lib.filterAttrs (_: v: v != null) (mapAttrs (_: v:
    if lib.isOption v then (if v ? default then lib.mkOptionDefault v.default else null)
    else if isAttrs v then optionDefaultsOf v
    else null) opts);

  perInstanceModule = call:
    let
      m = userModules.${call.module}.module;
      role = m.roles.${call.role};
      result = role.perInstance {
        inherit lib;
        inherit (call) instanceName settings roles;
        machine = { name = call.machine; roles = call.machineRoles; };
        meta = clanMeta;
        extendSettings = throw "extendSettings is not supported by clan yet";
        exports = { };
        mkExports = _: { };
      };
    in
    { source = "module '${call.module}', instance '${call.instanceName}', role '${call.role}' (perInstance)"; module = result.nixosModule or { }; };

  perMachineModule = call:
    let
      m = userModules.${call.module}.module;
      result = m.perMachine {
        inherit lib;
        inherit (call) instances;
        machine = { name = call.machine; roles = call.machineRoles; };
        meta = clanMeta;
        exports = { };
        mkExports = _: { };
      };
    in
    { source = "module '${call.module}' (perMachine)"; module = result.nixosModule or { }; };

  # A machine's modules, each with where it comes from.
  machineInputs = name:
    let confFile = clanDir + "/machines/${name}/configuration.nix"; in
    (if (clan.machines or { }) ? ${name} then [ { source = "${toString clanFile}: machines.${name}"; module = clan.machines.${name}; } ] else [ ])
    ++ (if pathExists confFile then [ { source = toString confFile; module = confFile; } ] else [ ])
    ++ map perInstanceModule (filter (c: c.machine == name) (args.perInstance or [ ]))
    ++ map perMachineModule (filter (c: c.machine == name) (args.perMachine or [ ]))
    ++ map (d: { source = d.source; module = d.value; }) (args.extraDefinitions.${name} or [ ]);

  # What modules read of a generator's file besides its settings: where it is deployed
  # (NixOS machines get the same from clan.core's generated options).
  withVarPaths = c:
    let
      core = c.clan.core or { };
      gens = (core.vars or { }).generators or { };
      withPath = g: gen: gen // { files = mapAttrs (f: file: file // { path = "/var/lib/clan/secrets/vars/${g}/${f}"; }) (gen.files or { }); };
    in
    if gens == { } then c
    else c // { clan = c.clan // { core = core // { vars = core.vars // { generators = mapAttrs withPath gens; }; }; }; };

  machineDefinitions = name:
    let
      defs = concatMap (i: collect i.source i.module { inherit name; } config) (machineInputs name);
      config = withVarPaths (mergeValues (map (d: d.value) defs));
    in
    map (d: { inherit (d) source; value = clean d.value; }) defs;

  results = {
    inventory = {
      topLevelKeys = attrNames clan;
      meta = clean (clan.meta or { });
      inventory = clean (clan.inventory or { });
      machineModules = attrNames (clan.machines or { });
      modules = mapAttrs (_: moduleInfo) userModules;
    };
    machines = listToAttrs (map (n: { name = n; value = machineDefinitions n; }) (args.machines or [ ]));
    module = { options = moduleOptions (import args.file) { }; };
    # The modules of the one machine in args, for a NixOS evaluation (not JSON:
    # imported by the expression that builds the machine's system).
    nixos = map (i: { _file = i.source; imports = [ i.module ]; }) (machineInputs (builtins.head args.machines));
  };
in
{ inherit schema; result = results.${query}; }
