//! The admin routes: the fault plan, read and replaced at run time.

use super::*;

/// `GET` the plan; `POST`/`PUT` a new one (a JSON array of rule strings, a JSON string of
/// rules, or the rules as plain text); `DELETE` to clear. Answers the plan now installed.
pub(super) async fn admin_faults(shared: &Shared, request: Request<Incoming>) -> Reply {
    let method = request.method().clone();
    let plan = if method == hyper::Method::GET {
        None
    } else if method == hyper::Method::DELETE {
        Some(FaultPlan::none())
    } else {
        let body = match read_body(request, 1 << 20).await {
            Ok(b) => b,
            Err(reply) => return reply,
        };
        match parse_fault_body(&body) {
            Ok(plan) => Some(plan),
            Err(e) => return Reply::detail(StatusCode::BAD_REQUEST, &e.to_string()),
        }
    };
    let mut core = shared.core();
    if let Some(plan) = plan {
        core.faults.replace(plan);
    }
    let plan = core.faults.plan();
    Reply::json(StatusCode::OK, &json!({ "rules": plan, "spec": plan.to_string() }))
}

/// A fault plan sent to the admin route: `["submit:429@1"]`, `"submit:429@1; status:503%20"`,
/// `{"rules": [...]}` or plain text.
pub(crate) fn parse_fault_body(body: &[u8]) -> Result<FaultPlan, SimError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::String(text)) => text.parse(),
        Ok(Value::Object(mut o)) => match o.remove("rules") {
            Some(Value::String(text)) => text.parse(),
            Some(Value::Array(rules)) => rules_of(rules),
            _ => Err(SimError::FaultSyntax { rule: String::new(), reason: "expected {\"rules\": [...]}".into() }),
        },
        Ok(Value::Array(rules)) => rules_of(rules),
        Ok(other) => Err(SimError::FaultSyntax { rule: other.to_string(), reason: "expected an array of rules".into() }),
        Err(_) => String::from_utf8_lossy(body).parse(),
    }
}

pub(super) fn rules_of(rules: Vec<Value>) -> Result<FaultPlan, SimError> {
    rules
        .into_iter()
        .map(|rule| match rule {
            Value::String(text) => text.parse(),
            other => Err(SimError::FaultSyntax { rule: other.to_string(), reason: "expected a rule string".into() }),
        })
        .collect()
}
