//! Merging definitions, the way users meet it everywhere in clan (inventory,
//! instance settings, machine configuration):
//!
//! - attribute sets merge key by key, lists concatenate (in definition order);
//! - priorities decide: `mkForce` (50) beats plain (100) beats `mkDefault` (1000)
//!   beats option defaults (1500); `mkOverride N` sets any. In JSON a priority is
//!   written `{"_type": "override", "priority": N, "content": V}`;
//! - a priority on an attribute set applies to every value inside it (unlike NixOS,
//!   where it would drop the whole set: here `mkDefault {a=1;}` and `{b=2;}` give
//!   `{a=1; b=2;}`);
//! - two different scalars at the same best priority are an error naming both places.
//!
//! Every value keeps where it came from (its provenance), so that validation errors
//! can say which file and which layer set the value.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

pub const PRIORITY_PLAIN: i64 = 100;

/// Where a definition was written, in words a user recognises.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Source(pub String);

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Source {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub source: Source,
    pub value: Value,
}

impl Definition {
    pub fn new(source: impl Into<String>, value: Value) -> Self {
        Self {
            source: Source::new(source),
            value,
        }
    }
}

/// The merged value and, for every JSON pointer in it, the sources that made it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merged {
    pub value: Value,
    pub provenance: BTreeMap<String, Vec<Source>>,
}

impl Merged {
    /// The sources of the value at `pointer`, or of its nearest parent that has any.
    pub fn sources_at(&self, pointer: &str) -> Vec<Source> {
        let mut p = pointer;
        loop {
            if let Some(s) = self.provenance.get(p) {
                return s.clone();
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Vec::new(),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeError {
    #[error(
        "'{path}' is defined twice with different values at the same priority:\n  {first_value} in {first}\n  \
         {second_value} in {second}\nKeep one, or give one of them a priority (mkDefault / mkForce)."
    )]
    Conflict {
        path: String,
        first: Source,
        first_value: String,
        second: Source,
        second_value: String,
    },
    #[error("'{path}' in {place}: malformed {kind} (expected {expected})")]
    Malformed {
        path: String,
        place: Source,
        kind: &'static str,
        expected: &'static str,
    },
}

#[derive(Clone, Copy)]
struct Def<'a> {
    source: &'a Source,
    priority: i64,
    /// Set once an override wrapper was seen; the outermost one counts.
    fixed: bool,
    value: &'a Value,
}

/// Merges `defs` in order.
pub fn merge(defs: &[Definition]) -> Result<Merged, MergeError> {
    let mut flat = Vec::new();
    for d in defs {
        expand(
            Def {
                source: &d.source,
                priority: PRIORITY_PLAIN,
                fixed: false,
                value: &d.value,
            },
            "",
            &mut flat,
        )?;
    }
    let mut merged = Merged::default();
    merged.value =
        merge_at(&flat, "", &mut merged.provenance)?.unwrap_or(Value::Object(Map::new()));
    Ok(merged)
}

fn wrapper_type(v: &Value) -> Option<&str> {
    v.as_object()?.get("_type")?.as_str()
}

/// Removes priority, condition and merge wrappers from the top of a definition.
fn expand<'a>(d: Def<'a>, path: &str, out: &mut Vec<Def<'a>>) -> Result<(), MergeError> {
    let malformed = |kind, expected| MergeError::Malformed {
        path: display_path(path),
        place: d.source.clone(),
        kind,
        expected,
    };
    match wrapper_type(d.value) {
        Some("override") => {
            let priority = d
                .value
                .get("priority")
                .and_then(Value::as_i64)
                .ok_or_else(|| malformed("override", "an integer `priority`"))?;
            let content = d
                .value
                .get("content")
                .ok_or_else(|| malformed("override", "a `content`"))?;
            let priority = if d.fixed { d.priority } else { priority };
            expand(
                Def {
                    priority,
                    fixed: true,
                    value: content,
                    ..d
                },
                path,
                out,
            )
        }
        Some("merge") => {
            let contents = d
                .value
                .get("contents")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed("merge", "a list `contents`"))?;
            contents
                .iter()
                .try_for_each(|c| expand(Def { value: c, ..d }, path, out))
        }
        Some("if") => {
            let condition = d
                .value
                .get("condition")
                .and_then(Value::as_bool)
                .ok_or_else(|| malformed("if", "a boolean `condition`"))?;
            match (condition, d.value.get("content")) {
                (false, _) => Ok(()),
                (true, Some(content)) => expand(
                    Def {
                        value: content,
                        ..d
                    },
                    path,
                    out,
                ),
                (true, None) => Err(malformed("if", "a `content`")),
            }
        }
        Some("absent") => Ok(()),
        _ => {
            out.push(d);
            Ok(())
        }
    }
}

fn is_plain_object(v: &Value) -> bool {
    v.is_object() && wrapper_type(v).is_none()
}

fn merge_at(
    defs: &[Def<'_>],
    path: &str,
    prov: &mut BTreeMap<String, Vec<Source>>,
) -> Result<Option<Value>, MergeError> {
    if defs.is_empty() {
        return Ok(None);
    }
    if defs.iter().all(|d| is_plain_object(d.value)) {
        return merge_objects(defs, path, prov).map(Some);
    }
    let best = defs.iter().map(|d| d.priority).min().expect("not empty");
    let winners: Vec<Def<'_>> = defs
        .iter()
        .copied()
        .filter(|d| d.priority == best)
        .collect();
    if winners.iter().all(|d| is_plain_object(d.value)) {
        return merge_objects(&winners, path, prov).map(Some);
    }
    if winners.iter().all(|d| d.value.is_array()) {
        let mut items = Vec::new();
        let mut sources = Vec::new();
        for d in &winners {
            for item in d.value.as_array().expect("array") {
                let item_path = format!("{path}/{}", items.len());
                let mut item_defs = Vec::new();
                expand(Def { value: item, ..*d }, &item_path, &mut item_defs)?;
                if let Some(v) = merge_at(&item_defs, &item_path, prov)? {
                    prov.insert(item_path, vec![d.source.clone()]);
                    items.push(v);
                }
            }
            push_unique(&mut sources, d.source);
        }
        prov.insert(path.to_string(), sources);
        return Ok(Some(Value::Array(items)));
    }
    let first = &winners[0];
    if let Some(other) = winners.iter().find(|d| d.value != first.value) {
        return Err(MergeError::Conflict {
            path: display_path(path),
            first: first.source.clone(),
            first_value: first.value.to_string(),
            second: other.source.clone(),
            second_value: other.value.to_string(),
        });
    }
    let mut sources = Vec::new();
    winners
        .iter()
        .for_each(|d| push_unique(&mut sources, d.source));
    prov.insert(path.to_string(), sources);
    Ok(Some(first.value.clone()))
}

fn merge_objects(
    defs: &[Def<'_>],
    path: &str,
    prov: &mut BTreeMap<String, Vec<Source>>,
) -> Result<Value, MergeError> {
    let mut keys: Vec<&String> = Vec::new();
    for d in defs {
        for k in d.value.as_object().expect("object").keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let mut out = Map::new();
    for key in keys {
        let child_path = format!("{path}/{}", escape_pointer(key));
        let mut child_defs = Vec::new();
        for d in defs {
            if let Some(v) = d.value.get(key) {
                expand(Def { value: v, ..*d }, &child_path, &mut child_defs)?;
            }
        }
        if let Some(v) = merge_at(&child_defs, &child_path, prov)? {
            out.insert(key.clone(), v);
        }
    }
    let mut sources = Vec::new();
    defs.iter()
        .for_each(|d| push_unique(&mut sources, d.source));
    prov.insert(path.to_string(), sources);
    Ok(Value::Object(out))
}

fn push_unique(sources: &mut Vec<Source>, s: &Source) {
    if !sources.contains(s) {
        sources.push(s.clone());
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer as a dotted path for messages (`/a/b/0` -> `a.b[0]`).
pub fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            let plain = !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if plain {
                out.push_str(&part)
            } else {
                out.push_str(&format!("{part:?}"))
            }
        }
    }
    if out.is_empty() {
        "(top level)".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(src: &str, v: Value) -> Definition {
        Definition::new(src, v)
    }
    fn force(v: Value) -> Value {
        json!({"_type": "override", "priority": 50, "content": v})
    }
    fn default(v: Value) -> Value {
        json!({"_type": "override", "priority": 1000, "content": v})
    }

    #[test]
    fn sets_merge_and_lists_concatenate() {
        let m = merge(&[
            d("a", json!({"x": {"p": 1}, "l": [1]})),
            d("b", json!({"x": {"q": 2}, "l": [2, 3]})),
        ])
        .unwrap();
        assert_eq!(m.value, json!({"x": {"p": 1, "q": 2}, "l": [1, 2, 3]}));
        assert_eq!(m.sources_at("/x/q"), vec![Source::new("b")]);
        assert_eq!(m.sources_at("/l/2"), vec![Source::new("b")]);
        assert_eq!(m.sources_at("/l"), vec![Source::new("a"), Source::new("b")]);
    }

    #[test]
    fn equal_scalars_agree_and_different_ones_conflict_naming_both() {
        assert_eq!(
            merge(&[d("a", json!({"x": 1})), d("b", json!({"x": 1}))])
                .unwrap()
                .value,
            json!({"x": 1})
        );
        let err = merge(&[
            d("role-wide", json!({"t": 40})),
            d("machine jon", json!({"t": 42})),
        ])
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("'t'")
                && msg.contains("40 in role-wide")
                && msg.contains("42 in machine jon"),
            "{msg}"
        );
    }

    #[test]
    fn priorities_decide() {
        let m = merge(&[
            d("role", json!({"t": 40})),
            d("jon", json!({"t": force(json!(42))})),
        ])
        .unwrap();
        assert_eq!(m.value, json!({"t": 42}));
        assert_eq!(m.sources_at("/t"), vec![Source::new("jon")]);
        let m = merge(&[
            d("a", default(json!({"a": 1, "b": 1}))),
            d("b", json!({"b": 2})),
        ])
        .unwrap();
        assert_eq!(m.value, json!({"a": 1, "b": 2}));
        let m = merge(&[
            d("a", json!({"l": [1]})),
            d("b", json!({"l": force(json!([]))})),
        ])
        .unwrap();
        assert_eq!(m.value, json!({"l": []}));
        let custom = json!({"_type": "override", "priority": 10, "content": "x"});
        let m = merge(&[
            d("a", json!({"v": force(json!("f"))})),
            d("b", json!({"v": custom})),
        ])
        .unwrap();
        assert_eq!(m.value, json!({"v": "x"}));
    }

    #[test]
    fn conditions_and_merges_are_discharged() {
        let m = merge(&[d(
            "a",
            json!({"_type": "merge", "contents": [
                {"x": {"_type": "if", "condition": false, "content": 1}},
                {"y": {"_type": "if", "condition": true, "content": 2}}
            ]}),
        )])
        .unwrap();
        assert_eq!(m.value, json!({"y": 2}));
    }

    #[test]
    fn malformed_wrappers_name_the_place() {
        let err = merge(&[d(
            "inventory.json",
            json!({"x": {"_type": "override", "content": 1}}),
        )])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "'x' in inventory.json: malformed override (expected an integer `priority`)"
        );
    }

    #[test]
    fn pointers_read_as_paths() {
        assert_eq!(display_path("/a/b c/0/d"), "a.\"b c\"[0].d");
        assert_eq!(display_path(""), "(top level)");
    }
}
