//! What a sync request makes available to parameter queries (PROTOCOL.md §1.3, the request table).
//!
//! Holds [`RequestParameters`], built once per connection from the verified JWT claims and the
//! client's `parameters` object: `request.user_id()`, `request.jwt()`, `request.parameters()`,
//! `request.parameter('k')`, `token_parameters.<x>` and `user_parameters.<x>`. All conversions from
//! JSON to SQLite values happen here, once; evaluation only borrows. Which buckets follow from these
//! values is decided in [`resolve`](crate::resolve).

use crate::value::Value;

static NULL: Value = Value::Null;

/// Request data for one sync connection: the JWT claims (authenticated) and the client-supplied
/// parameters (not authenticated).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestParameters {
    user_id: Value,
    jwt: Value,
    parameters: Value,
    token_parameters: Vec<(String, Value)>,
    user_parameters: Vec<(String, Value)>,
}

/// A JSON value as a sync-rules parameter (`toSyncRulesParameters`): integers → INTEGER, other
/// numbers → REAL, booleans → 1/0, strings → TEXT, null → NULL, arrays and objects → JSON text.
pub(crate) fn json_to_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

fn object_entries(json: &serde_json::Value) -> Vec<(String, Value)> {
    match json {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
        _ => Vec::new(),
    }
}

impl RequestParameters {
    /// Request data from the verified JWT `claims` and the request's `parameters` object.
    ///
    /// `request.user_id()` is the `sub` claim; `token_parameters` are the keys of the `parameters`
    /// claim (when it is an object) plus `user_id` (= `sub`, which wins); `user_parameters` are the
    /// keys of `client_parameters` (when it is an object).
    pub fn new(claims: &serde_json::Value, client_parameters: &serde_json::Value) -> Self {
        let user_id = claims.get("sub").map_or(Value::Null, json_to_value);
        let mut token_parameters = claims
            .get("parameters")
            .map(object_entries)
            .unwrap_or_default();
        token_parameters.retain(|(k, _)| k != "user_id");
        token_parameters.push(("user_id".to_owned(), user_id.clone()));
        let parameters = match client_parameters {
            serde_json::Value::Null => "{}".to_owned(),
            other => other.to_string(),
        };
        RequestParameters {
            user_id,
            jwt: Value::Text(claims.to_string()),
            parameters: Value::Text(parameters),
            token_parameters,
            user_parameters: object_entries(client_parameters),
        }
    }

    /// `request.user_id()`: the `sub` claim, NULL when absent.
    pub fn user_id(&self) -> &Value {
        &self.user_id
    }

    /// `request.jwt()`: the whole claims object as JSON text.
    pub fn jwt(&self) -> &Value {
        &self.jwt
    }

    /// `request.parameters()`: the client's parameters as JSON text (`{}` when none were sent).
    pub fn parameters(&self) -> &Value {
        &self.parameters
    }

    /// `token_parameters.<name>`; NULL when absent.
    pub fn token_parameter(&self, name: &str) -> &Value {
        lookup(&self.token_parameters, name)
    }

    /// `user_parameters.<name>`; NULL when absent.
    pub fn user_parameter(&self, name: &str) -> &Value {
        lookup(&self.user_parameters, name)
    }
}

fn lookup<'a>(entries: &'a [(String, Value)], name: &str) -> &'a Value {
    entries
        .iter()
        .find(|(k, _)| k == name)
        .map_or(&NULL, |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_parameters_include_user_id_from_sub_which_wins() {
        let request = RequestParameters::new(
            &json!({"sub": "u1", "parameters": {"user_id": "spoof", "org": 7, "ratio": 0.5, "admin": true, "tags": ["a"]}}),
            &json!({"list": "L1"}),
        );
        assert_eq!(request.user_id(), &Value::Text("u1".into()));
        assert_eq!(
            request.token_parameter("user_id"),
            &Value::Text("u1".into())
        );
        assert_eq!(request.token_parameter("org"), &Value::Integer(7));
        assert_eq!(request.token_parameter("ratio"), &Value::Real(0.5));
        assert_eq!(request.token_parameter("admin"), &Value::Integer(1));
        assert_eq!(
            request.token_parameter("tags"),
            &Value::Text("[\"a\"]".into())
        );
        assert_eq!(request.token_parameter("missing"), &Value::Null);
        assert_eq!(request.user_parameter("list"), &Value::Text("L1".into()));
    }

    #[test]
    fn jwt_and_parameters_are_json_text() {
        let request =
            RequestParameters::new(&json!({"sub": 5, "org": "o"}), &serde_json::Value::Null);
        assert_eq!(request.user_id(), &Value::Integer(5));
        assert_eq!(request.jwt(), &Value::Text(r#"{"sub":5,"org":"o"}"#.into()));
        assert_eq!(request.parameters(), &Value::Text("{}".into()));
    }
}
