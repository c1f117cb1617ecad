//! Validation of merged values against JSON Schemas, with errors that say where
//! the offending value was written.

use serde_json::Value;

use crate::merge::{Merged, Source, display_path};

/// One broken rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Issue {
    /// Dotted path of the value inside the validated document.
    pub path: String,
    /// The rule broken, as the validator words it (e.g. `"my/machine" does not match "^..."`).
    pub message: String,
    /// Where the value was set.
    pub sources: Vec<Source>,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at '{}': {}", self.path, self.message)?;
        match self.sources.as_slice() {
            [] => Ok(()),
            [one] => write!(f, " (set in {one})"),
            many => write!(
                f,
                " (set in {})",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A schema that cannot be compiled: a bug in the declarations, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON Schema: {0}")]
pub struct BadSchema(pub String);

/// A compiled schema.
pub struct Validator(jsonschema::Validator);

impl Validator {
    pub fn new(schema: &Value) -> Result<Self, BadSchema> {
        jsonschema::draft202012::new(schema)
            .map(Self)
            .map_err(|e| BadSchema(e.to_string()))
    }

    /// All broken rules in `merged.value`, each with the sources of the value.
    pub fn check(&self, merged: &Merged) -> Vec<Issue> {
        self.check_value(&merged.value, |pointer| merged.sources_at(pointer))
    }

    pub fn check_value(&self, value: &Value, sources: impl Fn(&str) -> Vec<Source>) -> Vec<Issue> {
        let mut issues: Vec<Issue> = self
            .0
            .iter_errors(value)
            .map(|e| {
                let pointer = e.instance_path().as_str().to_string();
                let blamed = match e.kind() {
                    jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected }
                        if unexpected.len() == 1 =>
                    {
                        format!(
                            "{pointer}/{}",
                            unexpected[0].replace('~', "~0").replace('/', "~1")
                        )
                    }
                    _ => pointer.clone(),
                };
                Issue {
                    path: display_path(&pointer),
                    message: e.to_string(),
                    sources: sources(&blamed),
                }
            })
            .collect();
        issues.dedup();
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{Definition, merge};
    use serde_json::json;

    #[test]
    fn issues_name_the_path_the_rule_and_the_source() {
        let schema = json!({"type": "object", "properties": {
            "networking": {"type": "object", "properties": {"hostName": {"type": "string", "pattern": "^$|^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$"}}}
        }});
        let m = merge(&[Definition::new(
            "configuration.json",
            json!({"networking": {"hostName": "my/machine"}}),
        )])
        .unwrap();
        let issues = Validator::new(&schema).unwrap().check(&m);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "networking.hostName");
        assert!(
            issues[0].message.contains("\"my/machine\" does not match"),
            "{}",
            issues[0].message
        );
        assert_eq!(issues[0].sources, vec![Source::new("configuration.json")]);
    }

    #[test]
    fn unexpected_keys_blame_the_definition_that_added_them() {
        let schema =
            json!({"type": "object", "properties": {"a": {}}, "additionalProperties": false});
        let m = merge(&[
            Definition::new("one", json!({"a": 1})),
            Definition::new("two", json!({"b": 1})),
        ])
        .unwrap();
        let issues = Validator::new(&schema).unwrap().check(&m);
        assert_eq!(issues[0].sources, vec![Source::new("two")]);
    }
}
