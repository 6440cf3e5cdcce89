//! The catalogue's JSON Schemas (`input_json_schema`, `output_json_schema`): their dialect,
//! written by regen and compiled here ([`DIALECT`], [`compile`]), and reading them: what a
//! use site stands for, and its type. The sample generator and the simulator's outputs read
//! schemas through these.
//!
//! The dialect is draft 7: every schema is self-contained, its `$ref`s into its own
//! `definitions`, and a `$ref` stands alone (regen wraps one with siblings in an `allOf`),
//! so each keyword means what it meant in 2020-12, the dialect before. Draft 7 because a
//! validator checks a schema against its dialect's meta-schema first: 2020-12's, built
//! once per process, cost 6.3 M instructions (2.6 ms, a quarter of a one-job `falq run`);
//! draft 7's is a fraction of that.

use serde_json::Value;

/// The `$schema` of every catalogue schema.
pub const DIALECT: &str = "http://json-schema.org/draft-07/schema#";

/// Where a catalogue schema keeps the schemas it refers to.
pub const DEFINITIONS: &str = "definitions";

/// How a catalogue schema's `$ref` names one of its [`DEFINITIONS`].
pub const DEFINITION_REF: &str = "#/definitions/";

/// Compiles a schema of the catalogue's dialect: formats are annotations (`int64`, `uri`:
/// nothing refuses a value for them), as they were in 2020-12.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options().with_draft(jsonschema::Draft::Draft7).should_validate_formats(false).build(schema).map_err(|e| e.to_string())
}

/// Which branch of a union (`anyOf`/`oneOf`) a use site stands for; a `null` branch is
/// never taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Branch {
    /// The first branch that is not `null`.
    First,
    /// The last branch that is not `null`.
    Last,
    /// The other branch of a union with `null` (an optional value); a union of two or
    /// more non-null branches is left as it is.
    Only,
}

/// The schema a use site of `root` stands for: `$ref`s into its definitions followed, single
/// `allOf`s unwrapped ([`through`]), and a union's branch as `branch` says.
pub fn resolve<'a>(root: &'a Value, mut s: &'a Value, branch: Branch) -> &'a Value {
    for _ in 0..32 {
        let Some(last) = through(root, s).last() else { break };
        s = last;
        // A `$ref` whose target is missing stands as it is.
        if s.get("$ref").is_some() {
            break;
        }
        match union_branch(s, branch) {
            Some(b) => s = b,
            None => break,
        }
    }
    s
}

/// The schemas a use site of `root` passes through to what it is, itself first: a `$ref`'s
/// target in its definitions, a single `allOf`'s member, and so on (a `$ref` comes first;
/// one whose target is missing ends the way; 32 steps at most).
pub fn through<'a>(root: &'a Value, s: &'a Value) -> impl Iterator<Item = &'a Value> {
    let step = move |s: &&'a Value| match s.get("$ref") {
        Some(_) => ref_target(root, s),
        None => s.get("allOf").and_then(Value::as_array).and_then(|all| match all.as_slice() {
            [one] => Some(one),
            _ => None,
        }),
    };
    std::iter::successors(Some(s), step).take(33)
}

/// The schema of `root`'s definitions a use site's own `$ref` names (one step), if it names one.
pub fn ref_target<'a>(root: &'a Value, s: &Value) -> Option<&'a Value> {
    let name = s.get("$ref")?.as_str()?.strip_prefix(DEFINITION_REF)?;
    root.get(DEFINITIONS)?.get(name)
}

/// A bound of a numeric schema, and whether it is exclusive.
pub type Bound = Option<(f64, bool)>;

/// A numeric schema's bounds, each with whether it is exclusive (`exclusiveMinimum` and
/// `exclusiveMaximum` are numbers in this form), an inclusive bound taken first.
pub fn bounds(s: &Value) -> (Bound, Bound) {
    let edge = |inclusive: &str, exclusive: &str| match (s.get(inclusive).and_then(Value::as_f64), s.get(exclusive).and_then(Value::as_f64))
    {
        (Some(b), _) => Some((b, false)),
        (None, Some(b)) => Some((b, true)),
        (None, None) => None,
    };
    (edge("minimum", "exclusiveMinimum"), edge("maximum", "exclusiveMaximum"))
}

/// An integer schema's bounds as the least and greatest integers they allow.
pub fn integer_bounds(s: &Value) -> (Option<f64>, Option<f64>) {
    let (lo, hi) = bounds(s);
    (
        lo.map(|(b, exclusive)| if exclusive { b.floor() + 1.0 } else { b.ceil() }),
        hi.map(|(b, exclusive)| if exclusive { b.ceil() - 1.0 } else { b.floor() }),
    )
}

fn union_branch(s: &Value, branch: Branch) -> Option<&Value> {
    let list = s.get("anyOf").or_else(|| s.get("oneOf")).and_then(Value::as_array)?;
    let mut not_null = list.iter().filter(|b| b.get("type").and_then(Value::as_str) != Some("null"));
    match branch {
        Branch::First => not_null.next(),
        Branch::Last => not_null.next_back(),
        Branch::Only => match (not_null.next(), not_null.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        },
    }
}

/// The schema's type, `null` left out of a list of types; empty when it names none.
pub fn type_of(s: &Value) -> &str {
    match s.get("type") {
        Some(Value::String(t)) => t,
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or(""),
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_use_site_resolves_through_refs_wrappers_and_the_chosen_branch() {
        let root = json!({"definitions": {"A": {"allOf": [{"$ref": "#/definitions/B"}]}, "B": {"type": "integer"}}});
        let union = json!({"anyOf": [{"type": "null"}, {"$ref": "#/definitions/A"}, {"type": "string"}]});
        assert_eq!(resolve(&root, &union, Branch::First), &json!({"type": "integer"}));
        assert_eq!(resolve(&root, &union, Branch::Last), &json!({"type": "string"}));
        assert_eq!(resolve(&root, &union, Branch::Only), &union, "two branches: no one of them");
        let optional = json!({"oneOf": [{"$ref": "#/definitions/A"}, {"type": "null"}]});
        assert_eq!(resolve(&root, &optional, Branch::Only), &json!({"type": "integer"}));
        let dangling = json!({"$ref": "#/definitions/Missing"});
        assert_eq!(resolve(&root, &dangling, Branch::First), &dangling);
        assert_eq!(ref_target(&root, &json!({"$ref": "#/definitions/B"})), Some(&json!({"type": "integer"})));
        assert_eq!(ref_target(&root, &json!({"$ref": "#/components/schemas/B"})), None, "not into the definitions");
        assert_eq!(type_of(&json!({"type": ["null", "number"]})), "number");
        assert_eq!(type_of(&json!({"enum": [1]})), "");
    }

    #[test]
    fn a_use_site_passes_through_refs_and_single_wrappers_and_no_further() {
        let root = json!({"definitions": {
            "A": {"allOf": [{"$ref": "#/definitions/B"}]},
            "B": {"$ref": "#/definitions/C", "description": "a ref comes first"},
            "C": {"allOf": [{"type": "integer"}, {"minimum": 1}]},
            "Loop": {"$ref": "#/definitions/Loop"},
        }});
        let site = json!({"$ref": "#/definitions/A"});
        let way: Vec<&Value> = through(&root, &site).collect();
        assert_eq!(way.len(), 5, "{way:?}");
        assert_eq!(way[0], &site);
        assert_eq!(way[4], &root["definitions"]["C"], "two members are no wrapper");
        let dangling = json!({"allOf": [{"$ref": "#/definitions/Missing"}]});
        assert_eq!(through(&root, &dangling).count(), 2, "a missing target ends the way at its $ref");
        assert_eq!(through(&root, &json!({"$ref": "#/definitions/Loop"})).count(), 33, "a cycle is cut");
    }

    #[test]
    fn bounds_say_whether_they_are_exclusive_and_integers_lie_inside_them() {
        let s = json!({"minimum": 2, "exclusiveMinimum": 1, "exclusiveMaximum": 7.5});
        assert_eq!(bounds(&s), (Some((2.0, false)), Some((7.5, true))), "an inclusive bound first");
        assert_eq!(integer_bounds(&s), (Some(2.0), Some(7.0)));
        assert_eq!(integer_bounds(&json!({"exclusiveMinimum": 3, "exclusiveMaximum": 6})), (Some(4.0), Some(5.0)));
        assert_eq!(integer_bounds(&json!({"minimum": 0.5, "maximum": 9.9})), (Some(1.0), Some(9.0)));
        assert_eq!(bounds(&json!({"type": "number"})), (None, None));
    }
}
