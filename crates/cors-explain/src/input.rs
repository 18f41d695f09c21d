//! The request to explain, from the command line or a line of `--requests`.

use serde_json::{json, Map, Value};

/// The request to explain, and what is known about where Envoy routes it.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub method: Option<String>,
    pub origin: Option<String>,
    pub request_method: Option<String>,
    pub request_headers: Option<String>,
    pub private_network: bool,
    pub route: Option<String>,
    pub vhost: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    /// The upstream's response headers (to see what the filter replaces or removes).
    pub upstream_headers: Vec<(String, String)>,
    pub upstream_status: Option<u32>,
}

impl Input {
    /// `OPTIONS` when an `Access-Control-Request-Method` is given, else `GET`, unless set.
    pub fn method(&self) -> &str {
        match (&self.method, &self.request_method) {
            (Some(m), _) => m,
            (None, Some(_)) => "OPTIONS",
            (None, None) => "GET",
        }
    }

    /// One line of `--requests`: an object with the option names as keys (`request_method`,
    /// `upstream_headers` as `[[name, value], …]` or `{name: value}`, …).
    pub fn from_json(v: &Value) -> Result<Input, String> {
        let obj = v.as_object().ok_or("each request must be a JSON object")?;
        let mut input = Input::default();
        for (key, value) in obj {
            let text = || -> Result<Option<String>, String> {
                match value {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.clone())),
                    _ => Err(format!("{key}: expected a string")),
                }
            };
            match key.as_str() {
                "method" => input.method = text()?,
                "origin" => input.origin = text()?,
                "request_method" => input.request_method = text()?,
                "request_headers" => input.request_headers = text()?,
                "route" => input.route = text()?,
                "vhost" => input.vhost = text()?,
                "path" => input.path = text()?,
                "host" => input.host = text()?,
                "private_network" => {
                    input.private_network = value
                        .as_bool()
                        .ok_or("private_network: expected a boolean")?
                }
                "upstream_status" => {
                    input.upstream_status = Some(
                        value
                            .as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or("upstream_status: expected a status code")?,
                    )
                }
                "upstream_headers" => input.upstream_headers = header_list(value)?,
                "id" => {}
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        Ok(input)
    }

    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("method".into(), json!(self.method()));
        let mut opt = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                o.insert(k.into(), json!(v));
            }
        };
        opt("origin", &self.origin);
        opt("request_method", &self.request_method);
        opt("request_headers", &self.request_headers);
        opt("route", &self.route);
        opt("vhost", &self.vhost);
        opt("path", &self.path);
        opt("host", &self.host);
        if self.private_network {
            o.insert("private_network".into(), json!(true));
        }
        Value::Object(o)
    }
}

fn header_list(v: &Value) -> Result<Vec<(String, String)>, String> {
    let pair = |n: &Value, v: &Value| match (n.as_str(), v.as_str()) {
        (Some(n), Some(v)) => Ok((n.to_ascii_lowercase(), v.to_owned())),
        _ => Err("upstream_headers: names and values must be strings".to_owned()),
    };
    match v {
        Value::Array(items) => items
            .iter()
            .map(|item| match item.as_array().map(Vec::as_slice) {
                Some([n, v]) => pair(n, v),
                _ => Err("upstream_headers: expected [name, value] pairs".to_owned()),
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(n, v)| pair(&Value::String(n.clone()), v))
            .collect(),
        _ => Err("upstream_headers: expected a list of [name, value] or an object".into()),
    }
}
