//! Option IR -> JSON Schema (draft 2020-12): the contract between option
//! declarations, validation, the CLI, an API and any UI.

use serde_json::{Map, Value, json};

use crate::options::{DefaultValue, Group, OptionNode, OptionType, join};

pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "option '{path}' has type '{type_name}', which has no JSON form; \
     use a JSON type (e.g. str or listOf str) for options that clan should see"
)]
pub struct SchemaError {
    pub path: String,
    pub type_name: String,
}

/// The schema of a whole option tree, with the dialect header.
pub fn document(group: &Group) -> Result<Value, SchemaError> {
    let mut schema = group_schema(group, "")?;
    schema
        .as_object_mut()
        .expect("group schema is an object")
        .shift_insert(0, "$schema".into(), DIALECT.into());
    Ok(schema)
}

/// The schema of one option or group found at a dotted `path` inside `group`.
pub fn document_at(group: &Group, path: &str) -> Option<Result<Value, SchemaError>> {
    let mut node: Option<&OptionNode> = None;
    let mut current = group;
    for part in path.split('.') {
        let found = current.get(part)?;
        node = Some(found);
        current = match found {
            OptionNode::Group(g) => g,
            OptionNode::Option(o) => match &o.ty {
                OptionType::Submodule(g) => g,
                _ => &EMPTY,
            },
        };
    }
    let schema = match node? {
        OptionNode::Group(g) => group_schema(g, path),
        OptionNode::Option(o) => option_schema(o, path),
    };
    Some(schema.map(|mut s| {
        if let Some(obj) = s.as_object_mut() {
            obj.shift_insert(0, "$schema".into(), DIALECT.into());
        }
        s
    }))
}

/// The schema of one option (with the dialect header), for checking a value given
/// for it on its own.
pub fn option_document(o: &crate::options::OptionDecl, path: &str) -> Result<Value, SchemaError> {
    let mut s = option_schema(o, path)?;
    if let Some(obj) = s.as_object_mut() {
        obj.shift_insert(0, "$schema".into(), DIALECT.into());
    }
    Ok(s)
}

static EMPTY: Group = Group::new();

fn group_schema(group: &Group, path: &str) -> Result<Value, SchemaError> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, node) in group {
        let child = join(path, name);
        match node {
            OptionNode::Option(o) if !o.visible => continue,
            OptionNode::Option(o) => {
                if o.default == DefaultValue::None {
                    required.push(Value::from(name.as_str()));
                }
                properties.insert(name.clone(), option_schema(o, &child)?);
            }
            OptionNode::Group(g) => {
                if crate::options::group_required(g) {
                    required.push(Value::from(name.as_str()));
                }
                properties.insert(name.clone(), group_schema(g, &child)?);
            }
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), "object".into());
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    schema.insert("additionalProperties".into(), false.into());
    Ok(Value::Object(schema))
}

fn option_schema(o: &crate::options::OptionDecl, path: &str) -> Result<Value, SchemaError> {
    let mut schema = type_schema(&o.ty, path)?;
    let obj = schema.as_object_mut().expect("type schemas are objects");
    if let Some(d) = &o.description {
        obj.insert("description".into(), d.clone().into());
    }
    if let DefaultValue::Json(d) = &o.default {
        obj.insert("default".into(), d.clone());
    }
    if o.read_only {
        obj.insert("readOnly".into(), true.into());
    }
    if let Some(meta) = &o.meta {
        obj.insert("x-ui".into(), meta.clone());
    }
    Ok(schema)
}

/// Anchors a whole-string Nix regex for JSON Schema's search semantics.
fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

fn type_schema(ty: &OptionType, path: &str) -> Result<Value, SchemaError> {
    Ok(match ty {
        OptionType::Bool => json!({"type": "boolean"}),
        OptionType::Str | OptionType::Lines | OptionType::Path => json!({"type": "string"}),
        OptionType::Int => json!({"type": "integer"}),
        OptionType::IntPositive => json!({"type": "integer", "minimum": 1}),
        OptionType::IntUnsigned => json!({"type": "integer", "minimum": 0}),
        OptionType::IntBetween { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max})
        }
        OptionType::Port => json!({"type": "integer", "minimum": 0, "maximum": 65535}),
        OptionType::Float | OptionType::Number => json!({"type": "number"}),
        OptionType::NumberBetween { min, max } => {
            json!({"type": "number", "minimum": min, "maximum": max})
        }
        OptionType::Enum(values) => json!({"enum": values}),
        OptionType::StrMatching { pattern } => {
            json!({"type": "string", "pattern": anchored(pattern)})
        }
        OptionType::ListOf { elem, non_empty } => {
            let mut s = json!({"type": "array", "items": type_schema(elem, &join(path, "*"))?});
            if *non_empty {
                s["minItems"] = 1.into();
            }
            s
        }
        OptionType::AttrsOf { elem, key_pattern } => {
            let mut s = json!({"type": "object", "additionalProperties": type_schema(elem, &join(path, "<name>"))?});
            if let Some(p) = key_pattern {
                s["propertyNames"] = json!({"pattern": anchored(p)});
            }
            s
        }
        OptionType::NullOr(t) => {
            let inner = type_schema(t, path)?;
            if accepts_null(&inner) {
                inner
            } else {
                json!({"oneOf": [{"type": "null"}, inner]})
            }
        }
        OptionType::Submodule(g) => group_schema(g, path)?,
        OptionType::OneOf(ts) => {
            let mut branches: Vec<Value> = Vec::new();
            for t in ts {
                let s = type_schema(t, path)?;
                // `either a b` nests: flatten, and drop repeated branches.
                let parts = match s.get("oneOf").and_then(Value::as_array) {
                    Some(inner) if s.as_object().is_some_and(|o| o.len() == 1) => inner.clone(),
                    _ => vec![s],
                };
                for p in parts {
                    if !branches.contains(&p) {
                        branches.push(p);
                    }
                }
            }
            if branches.iter().any(|b| b == &json!({})) {
                json!({})
            } else if branches.len() == 1 {
                branches.pop().expect("one branch")
            } else {
                json!({"oneOf": branches})
            }
        }
        OptionType::Anything => json!({}),
        OptionType::Attrs => json!({"type": "object"}),
        OptionType::NotJson(name) => {
            return Err(SchemaError {
                path: path.to_string(),
                type_name: name.clone(),
            });
        }
    })
}

fn accepts_null(schema: &Value) -> bool {
    schema == &json!({}) || schema.get("type") == Some(&json!("null"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::build::*;

    fn schema_of(t: OptionType) -> Value {
        type_schema(&t, "x").unwrap()
    }

    #[test]
    fn every_type_maps_to_its_schema() {
        assert_eq!(schema_of(bool()), json!({"type": "boolean"}));
        assert_eq!(schema_of(str()), json!({"type": "string"}));
        assert_eq!(
            schema_of(OptionType::IntBetween { min: 1, max: 5 }),
            json!({"type": "integer", "minimum": 1, "maximum": 5})
        );
        assert_eq!(
            schema_of(port()),
            json!({"type": "integer", "minimum": 0, "maximum": 65535})
        );
        assert_eq!(
            schema_of(matching("[a-z]+")),
            json!({"type": "string", "pattern": "^(?:[a-z]+)$"})
        );
        assert_eq!(
            schema_of(list_of(int())),
            json!({"type": "array", "items": {"type": "integer"}})
        );
        assert_eq!(
            schema_of(attrs_of(bool())),
            json!({"type": "object", "additionalProperties": {"type": "boolean"}})
        );
        assert_eq!(
            schema_of(null_or(str())),
            json!({"oneOf": [{"type": "null"}, {"type": "string"}]})
        );
        assert_eq!(schema_of(null_or(anything())), json!({}));
        assert_eq!(schema_of(enum_of(&["a", "b"])), json!({"enum": ["a", "b"]}));
        assert_eq!(
            schema_of(one_of(vec![str(), one_of(vec![int(), str()])])),
            json!({"oneOf": [{"type": "string"}, {"type": "integer"}]})
        );
    }

    #[test]
    fn groups_have_required_and_closed_properties() {
        let g = group([
            ("a", opt(str()).desc("A").node()),
            ("b", opt(int()).default(3).node()),
            (
                "hidden",
                OptionNode::Option(crate::options::OptionDecl {
                    visible: false,
                    ..opt(str())
                }),
            ),
        ]);
        assert_eq!(
            document(&g).unwrap(),
            json!({"$schema": DIALECT, "type": "object",
                   "properties": {"a": {"type": "string", "description": "A"}, "b": {"type": "integer", "default": 3}},
                   "required": ["a"], "additionalProperties": false})
        );
    }

    #[test]
    fn types_without_json_form_name_the_option() {
        let g = group([(
            "svc",
            nested([("pkg", opt(OptionType::NotJson("package".into())).node())]),
        )]);
        let err = document(&g).unwrap_err();
        assert_eq!(err.path, "svc.pkg");
        assert!(err.to_string().contains("'package'"));
    }
}
