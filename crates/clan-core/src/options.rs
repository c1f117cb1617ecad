//! Option declarations as data: clan's intermediate representation (IR) of
//! `mkOption` trees. Nix modules are turned into it by the glue (`eval.nix`),
//! built-in modules declare it in Rust with the builder below. From here come the
//! JSON Schemas (`schema.rs`) and the defaults applied to merged settings.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A tree of options: attribute names to options or nested groups.
pub type Group = BTreeMap<String, OptionNode>;

#[derive(Debug, Clone, PartialEq)]
pub enum OptionNode {
    Option(OptionDecl),
    Group(Group),
}

#[derive(Debug, Clone, PartialEq)]
pub struct OptionDecl {
    pub ty: OptionType,
    pub description: Option<String>,
    pub default: DefaultValue,
    /// SelfPrivacy's UI metadata (`meta`), kept as given.
    pub meta: Option<Value>,
    pub visible: bool,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    /// No default: the option is required.
    None,
    /// A default that is plain JSON.
    Json(Value),
    /// A default that exists but is not data (a function, or given only as `defaultText`).
    Opaque,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OptionType {
    Bool,
    Str,
    Lines,
    Path,
    Int,
    IntPositive,
    IntUnsigned,
    IntBetween {
        min: i64,
        max: i64,
    },
    Port,
    Float,
    Number,
    NumberBetween {
        min: f64,
        max: f64,
    },
    Enum(Vec<Value>),
    /// `pattern` is matched against the whole string, as Nix's `builtins.match` does.
    StrMatching {
        pattern: String,
    },
    ListOf {
        elem: Box<OptionType>,
        non_empty: bool,
    },
    /// `key_pattern` restricts attribute names (used by clan's own declarations).
    AttrsOf {
        elem: Box<OptionType>,
        key_pattern: Option<String>,
    },
    NullOr(Box<OptionType>),
    Submodule(Group),
    OneOf(Vec<OptionType>),
    Anything,
    Attrs,
    /// Types that have no JSON form; a schema for them is an error.
    NotJson(String),
}

impl OptionType {
    /// The type's name as Nix writes it, for messages.
    pub fn nix_name(&self) -> String {
        match self {
            Self::Bool => "bool".into(),
            Self::Str => "str".into(),
            Self::Lines => "lines".into(),
            Self::Path => "path".into(),
            Self::Int => "int".into(),
            Self::IntPositive => "ints.positive".into(),
            Self::IntUnsigned => "ints.unsigned".into(),
            Self::IntBetween { min, max } => format!("ints.between {min} {max}"),
            Self::Port => "port".into(),
            Self::Float => "float".into(),
            Self::Number => "number".into(),
            Self::NumberBetween { min, max } => format!("numbers.between {min} {max}"),
            Self::Enum(_) => "enum".into(),
            Self::StrMatching { pattern } => format!("strMatching {pattern:?}"),
            Self::ListOf { elem, .. } => format!("listOf ({})", elem.nix_name()),
            Self::AttrsOf { elem, .. } => format!("attrsOf ({})", elem.nix_name()),
            Self::NullOr(t) => format!("nullOr ({})", t.nix_name()),
            Self::Submodule(_) => "submodule".into(),
            Self::OneOf(_) => "oneOf".into(),
            Self::Anything => "anything".into(),
            Self::Attrs => "attrs".into(),
            Self::NotJson(name) => name.clone(),
        }
    }
}

/// The IR as the Nix glue writes it could not be read (a bug in clan or a
/// declaration that is not an option).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("option '{path}': {message}")]
pub struct IrError {
    pub path: String,
    pub message: String,
}

/// Reads a group as written by `eval.nix` (`{"_group": {...}}`).
pub fn group_from_ir(ir: &Value, path: &str) -> Result<Group, IrError> {
    let err = |message: &str| IrError {
        path: path.to_string(),
        message: message.to_string(),
    };
    let entries = ir
        .get("_group")
        .and_then(Value::as_object)
        .ok_or_else(|| err("expected an option group"))?;
    let mut group = Group::new();
    for (name, node) in entries {
        let child = join(path, name);
        let node = if node.get("_option").is_some() {
            OptionNode::Option(decl_from_ir(node, &child)?)
        } else if node.get("_group").is_some() {
            OptionNode::Group(group_from_ir(node, &child)?)
        } else {
            return Err(IrError {
                path: child,
                message: "is neither an option (mkOption) nor an attribute set of options".into(),
            });
        };
        group.insert(name.clone(), node);
    }
    Ok(group)
}

fn decl_from_ir(ir: &Value, path: &str) -> Result<OptionDecl, IrError> {
    let flag = |k: &str| ir.get(k).and_then(Value::as_bool).unwrap_or(false);
    let default = if !flag("hasDefault") {
        DefaultValue::None
    } else if flag("defaultIsJson") && !contains_marker(&ir["default"]) {
        DefaultValue::Json(ir["default"].clone())
    } else {
        DefaultValue::Opaque
    };
    Ok(OptionDecl {
        ty: type_from_ir(&ir["type"], path)?,
        description: ir.get("description").and_then(description_text),
        default,
        meta: ir.get("meta").filter(|m| !m.is_null()).cloned(),
        visible: ir.get("visible").and_then(Value::as_bool).unwrap_or(true),
        read_only: flag("readOnly"),
    })
}

/// Descriptions may be strings or `{ text = ...; }` (mdDoc-style).
fn description_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("text").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// True when a value holds something the glue could not turn into data.
fn contains_marker(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            matches!(
                o.get("_type").and_then(Value::as_str),
                Some("function" | "absent")
            ) || o.values().any(contains_marker)
        }
        Value::Array(a) => a.iter().any(contains_marker),
        _ => false,
    }
}

fn type_from_ir(ir: &Value, path: &str) -> Result<OptionType, IrError> {
    let name = ir.get("name").and_then(Value::as_str).unwrap_or("invalid");
    let elem = || type_from_ir(&ir["elem"], path).map(Box::new);
    let num = |k: &str| ir.get(k).and_then(Value::as_f64).unwrap_or_default();
    let int = |k: &str| ir.get(k).and_then(Value::as_i64).unwrap_or_default();
    Ok(match name {
        "bool" => OptionType::Bool,
        "str" => OptionType::Str,
        "lines" => OptionType::Lines,
        "path" => OptionType::Path,
        "int" => OptionType::Int,
        "intPositive" => OptionType::IntPositive,
        "intUnsigned" => OptionType::IntUnsigned,
        "intBetween" => OptionType::IntBetween {
            min: int("min"),
            max: int("max"),
        },
        "port" => OptionType::Port,
        "float" => OptionType::Float,
        "number" => OptionType::Number,
        "numberBetween" => OptionType::NumberBetween {
            min: num("min"),
            max: num("max"),
        },
        "enum" => OptionType::Enum(
            ir.get("values")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ),
        "strMatching" => OptionType::StrMatching {
            pattern: ir
                .get("pattern")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        },
        "listOf" => OptionType::ListOf {
            elem: elem()?,
            non_empty: ir.get("nonEmpty").is_some(),
        },
        "attrsOf" => OptionType::AttrsOf {
            elem: elem()?,
            key_pattern: None,
        },
        "nullOr" => OptionType::NullOr(elem()?),
        "submodule" => OptionType::Submodule(group_from_ir(&ir["options"], &join(path, "<name>"))?),
        "oneOf" => OptionType::OneOf(
            ir.get("types")
                .and_then(Value::as_array)
                .map(|ts| {
                    ts.iter()
                        .map(|t| type_from_ir(t, path))
                        .collect::<Result<_, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
        ),
        "anything" => OptionType::Anything,
        "attrs" => OptionType::Attrs,
        "package" | "functionTo" => OptionType::NotJson(name.to_string()),
        "invalid" => {
            return Err(IrError {
                path: path.to_string(),
                message: "`type` is not an option type (lib.types.*)".into(),
            });
        }
        other => OptionType::NotJson(other.to_string()),
    })
}

pub(crate) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// True when a value for this group must be given (some option has no default).
pub fn group_required(group: &Group) -> bool {
    group.values().any(|n| match n {
        OptionNode::Option(o) => o.default == DefaultValue::None,
        OptionNode::Group(g) => group_required(g),
    })
}

/// Fills in the defaults of options that `value` leaves out, recursively through
/// groups, submodules, and attribute sets and lists of submodules.
/// The first setting in `value` that is declared unsupported and set to other than
/// its default: its dotted path and the reason.
pub fn unsupported_setting(group: &Group, value: &Value) -> Option<(String, String)> {
    for (name, node) in group {
        let v = value.get(name);
        match node {
            OptionNode::Option(o) => {
                let reason = o.meta.as_ref().and_then(|m| m["unsupported"].as_str());
                let default = match &o.default {
                    DefaultValue::Json(d) => Some(d),
                    _ => None,
                };
                if let (Some(reason), Some(v)) = (reason, v)
                    && Some(v) != default
                {
                    return Some((name.clone(), reason.to_string()));
                }
            }
            OptionNode::Group(g) => {
                if let Some((path, reason)) = v.and_then(|v| unsupported_setting(g, v)) {
                    return Some((format!("{name}.{path}"), reason));
                }
            }
        }
    }
    None
}

pub fn apply_defaults(group: &Group, value: &mut Map<String, Value>) {
    for (name, node) in group {
        match node {
            OptionNode::Option(o) => {
                if !value.contains_key(name)
                    && let DefaultValue::Json(d) = &o.default
                {
                    value.insert(name.clone(), d.clone());
                }
                if let Some(v) = value.get_mut(name) {
                    apply_type_defaults(&o.ty, v);
                }
            }
            OptionNode::Group(g) => {
                if !value.contains_key(name) && !group_required(g) {
                    value.insert(name.clone(), Value::Object(Map::new()));
                }
                if let Some(Value::Object(inner)) = value.get_mut(name) {
                    apply_defaults(g, inner);
                }
            }
        }
    }
}

fn apply_type_defaults(ty: &OptionType, value: &mut Value) {
    match (ty, value) {
        (OptionType::Submodule(g), Value::Object(o)) => apply_defaults(g, o),
        (OptionType::AttrsOf { elem, .. }, Value::Object(o)) => {
            o.values_mut().for_each(|v| apply_type_defaults(elem, v));
        }
        (OptionType::ListOf { elem, .. }, Value::Array(a)) => {
            a.iter_mut().for_each(|v| apply_type_defaults(elem, v))
        }
        (OptionType::NullOr(t), v) if !v.is_null() => apply_type_defaults(t, v),
        _ => {}
    }
}

/// Builders for options declared in Rust (built-in modules, clan's own interfaces).
pub mod build {
    use super::*;

    pub fn opt(ty: OptionType) -> OptionDecl {
        OptionDecl {
            ty,
            description: None,
            default: DefaultValue::None,
            meta: None,
            visible: true,
            read_only: false,
        }
    }

    impl OptionDecl {
        pub fn default(mut self, v: impl Into<Value>) -> Self {
            self.default = DefaultValue::Json(v.into());
            self
        }
        pub fn desc(mut self, d: &str) -> Self {
            self.description = Some(d.to_string());
            self
        }
        /// A setting Clan's service has and clan does not implement: accepted at
        /// its default (so Clan's files read unchanged), any other value refused
        /// with `reason`; forms leave it out.
        pub fn unsupported(mut self, reason: &str) -> Self {
            self.meta = Some(serde_json::json!({ "unsupported": reason }));
            self
        }
        pub fn node(self) -> OptionNode {
            OptionNode::Option(self)
        }
    }

    impl From<OptionDecl> for OptionNode {
        fn from(o: OptionDecl) -> Self {
            OptionNode::Option(o)
        }
    }

    pub fn group<const N: usize>(entries: [(&str, OptionNode); N]) -> Group {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    pub fn nested<const N: usize>(entries: [(&str, OptionNode); N]) -> OptionNode {
        OptionNode::Group(group(entries))
    }

    pub fn str() -> OptionType {
        OptionType::Str
    }
    pub fn lines() -> OptionType {
        OptionType::Lines
    }
    pub fn bool() -> OptionType {
        OptionType::Bool
    }
    pub fn int() -> OptionType {
        OptionType::Int
    }
    pub fn port() -> OptionType {
        OptionType::Port
    }
    pub fn anything() -> OptionType {
        OptionType::Anything
    }
    pub fn matching(pattern: &str) -> OptionType {
        OptionType::StrMatching {
            pattern: pattern.to_string(),
        }
    }
    pub fn enum_of(values: &[&str]) -> OptionType {
        OptionType::Enum(values.iter().map(|v| Value::from(*v)).collect())
    }
    pub fn list_of(t: OptionType) -> OptionType {
        OptionType::ListOf {
            elem: Box::new(t),
            non_empty: false,
        }
    }
    pub fn attrs_of(t: OptionType) -> OptionType {
        OptionType::AttrsOf {
            elem: Box::new(t),
            key_pattern: None,
        }
    }
    /// An attribute set whose names must match `key_pattern` (whole-string match).
    pub fn named_attrs_of(key_pattern: &str, t: OptionType) -> OptionType {
        OptionType::AttrsOf {
            elem: Box::new(t),
            key_pattern: Some(key_pattern.to_string()),
        }
    }
    pub fn null_or(t: OptionType) -> OptionType {
        OptionType::NullOr(Box::new(t))
    }
    pub fn submodule(g: Group) -> OptionType {
        OptionType::Submodule(g)
    }
    pub fn one_of(ts: Vec<OptionType>) -> OptionType {
        OptionType::OneOf(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_groups_submodules_and_attrs_of_submodules() {
        let entry = group([
            ("folders", opt(list_of(str())).default(json!([])).node()),
            ("x", opt(int()).node()),
        ]);
        let g = group([
            ("port", opt(port()).default(22).node()),
            (
                "nested",
                nested([("enable", opt(bool()).default(false).node())]),
            ),
            (
                "entries",
                opt(attrs_of(submodule(entry))).default(json!({})).node(),
            ),
        ]);
        let mut v = json!({"entries": {"a": {"x": 1}}})
            .as_object()
            .unwrap()
            .clone();
        apply_defaults(&g, &mut v);
        assert_eq!(
            Value::Object(v),
            json!({"entries": {"a": {"x": 1, "folders": []}}, "port": 22, "nested": {"enable": false}})
        );
    }

    #[test]
    fn ir_from_nix_is_read_with_defaults_and_meta() {
        let ir = json!({"_group": {
            "enable": {"_option": true, "type": {"name": "bool"}, "hasDefault": true, "defaultIsJson": true,
                       "default": false, "meta": {"type": "enable"}, "description": "Enable it"},
            "f": {"_option": true, "type": {"name": "anything"}, "hasDefault": true, "defaultIsJson": true,
                  "default": {"_type": "function"}},
            "sub": {"_group": {"p": {"_option": true, "type": {"name": "port"}, "hasDefault": false}}}
        }});
        let g = group_from_ir(&ir, "").unwrap();
        let OptionNode::Option(enable) = &g["enable"] else {
            panic!()
        };
        assert_eq!(enable.default, DefaultValue::Json(json!(false)));
        assert_eq!(enable.meta, Some(json!({"type": "enable"})));
        let OptionNode::Option(f) = &g["f"] else {
            panic!()
        };
        assert_eq!(f.default, DefaultValue::Opaque);
        assert!(group_required(&g));
    }

    #[test]
    fn ir_that_is_not_an_option_names_the_path() {
        let ir = json!({"_group": {"a": {"_group": {"b": {"_invalid": true}}}}});
        let err = group_from_ir(&ir, "").unwrap_err();
        assert_eq!(err.path, "a.b");
    }
}
