//! The served schema against SelfPrivacy's: every type, field, argument (with its
//! type and default), enum value, union member, interface and deprecation of the
//! server's schema (3.8.4; the app's 67 operations validate against it) is served
//! the same. The facts of SelfPrivacy's schema are in `fixtures/selfprivacy-facts.txt`,
//! one per line, in the form `facts()` writes.

use std::collections::BTreeSet;

use async_graphql::parser::types::{ServiceDocument, Type, TypeKind, TypeSystemDefinition};

/// One line per fact of a schema's SDL.
fn facts(sdl: &str) -> BTreeSet<String> {
    let doc: ServiceDocument = async_graphql::parser::parse_schema(sdl).expect("SDL parses");
    let mut out = BTreeSet::new();
    let ty = |t: &Type| t.to_string();
    let deprecated = |d: &[async_graphql::Positioned<
        async_graphql::parser::types::ConstDirective,
    >]| { d.iter().any(|d| d.node.name.node == "deprecated") };
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let name = t.node.name.node.to_string();
        // async-graphql's own scalars and directives are not part of the comparison.
        match &t.node.kind {
            TypeKind::Scalar => {
                out.insert(format!("scalar {name}"));
            }
            TypeKind::Object(o) => {
                out.insert(format!("type {name}"));
                for i in &o.implements {
                    out.insert(format!("{name} implements {}", i.node));
                }
                fields(&mut out, &name, &o.fields, &ty, &deprecated);
            }
            TypeKind::Interface(i) => {
                out.insert(format!("interface {name}"));
                fields(&mut out, &name, &i.fields, &ty, &deprecated);
            }
            TypeKind::Union(u) => {
                for m in &u.members {
                    out.insert(format!("union {name} = {}", m.node));
                }
            }
            TypeKind::Enum(e) => {
                for v in &e.values {
                    out.insert(format!("enum {name} = {}", v.node.value.node));
                }
            }
            TypeKind::InputObject(i) => {
                for f in &i.fields {
                    out.insert(format!(
                        "input {name}.{}: {}{}",
                        f.node.name.node,
                        ty(&f.node.ty.node),
                        default(
                            &f.node.ty.node,
                            f.node.default_value.as_ref().map(|d| d.node.to_string())
                        )
                    ));
                }
            }
        }
    }
    out
}

/// ` = value`, where a nullable input's null default counts as none.
fn default(t: &Type, d: Option<String>) -> String {
    match d {
        Some(d) if !(t.nullable && d == "null") => format!(" = {d}"),
        _ => String::new(),
    }
}

fn fields(
    out: &mut BTreeSet<String>,
    owner: &str,
    fields: &[async_graphql::Positioned<async_graphql::parser::types::FieldDefinition>],
    ty: &dyn Fn(&Type) -> String,
    deprecated: &dyn Fn(
        &[async_graphql::Positioned<async_graphql::parser::types::ConstDirective>],
    ) -> bool,
) {
    for f in fields {
        let f = &f.node;
        let args: Vec<String> = f
            .arguments
            .iter()
            .map(|a| {
                format!(
                    "{}: {}{}",
                    a.node.name.node,
                    ty(&a.node.ty.node),
                    default(
                        &a.node.ty.node,
                        a.node.default_value.as_ref().map(|d| d.node.to_string())
                    )
                )
            })
            .collect();
        out.insert(format!(
            "{owner}.{}({}): {}{}",
            f.name.node,
            args.join(", "),
            ty(&f.ty.node),
            if deprecated(&f.directives) {
                " deprecated"
            } else {
                ""
            }
        ));
    }
}

#[test]
fn the_served_schema_has_every_type_field_and_value_of_selfprivacys() {
    let expected: BTreeSet<String> = include_str!("fixtures/selfprivacy-facts.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let served = facts(&clan_agent::schema::sdl());
    let missing: Vec<&String> = expected.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "served differently or not at all:\n{}",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Nothing beyond it either: the app's generated code knows these types only.
    let extra: Vec<&String> = served.difference(&expected).collect();
    assert!(
        extra.is_empty(),
        "served beyond SelfPrivacy's schema:\n{}",
        extra
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
