//! The browsable reference page (`GET /api/v1/docs`): the OpenAPI document rendered as one
//! server-side HTML page in the public pages' layout, with no JavaScript (so it works under
//! their `Content-Security-Policy` and offline). Operations are grouped by tag, each with its
//! authentication, parameters, request body and responses; the schemas follow, linked.

use crate::http::public::html::{esc, layout};
use serde_json::{Map, Value};
use std::fmt::Write;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

const STYLE: &str = "<style>
.ref table{margin:.4rem 0 .8rem;font-size:.92rem}
.ref th{width:auto}
.ref .op{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.5rem .9rem;margin:.9rem 0;overflow-x:auto}
.ref td code,.ref li code{overflow-wrap:anywhere}
.ref .op h3{margin:.3rem 0;font-size:1.05rem;overflow-wrap:anywhere}
.ref .verb{display:inline-block;min-width:4.2rem;font:700 .8rem/1.6 ui-monospace,monospace;text-transform:uppercase;color:var(--accent)}
.ref ul.toc{columns:22rem;padding-left:1.1rem}
.ref h4{margin:.7rem 0 .2rem;font-size:.95rem;color:var(--muted)}
</style>";

/// Inline Markdown of the document's texts: escaped, with `code` and **bold**.
fn inline(text: &str) -> String {
    let escaped = esc(text).to_string();
    let mut out = String::new();
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            for (j, piece) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<strong>{piece}</strong>");
                } else {
                    out.push_str(piece);
                }
            }
        }
    }
    out
}

/// Paragraphs (blank-line separated) of inline Markdown.
fn paragraphs(text: &str) -> String {
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>\n", inline(p.trim())))
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn anchor(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A schema in a few words, with links to named schemas.
fn type_of(schema: &Value, depth: usize) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!(r##"<a href="#schema-{}">{}</a>"##, anchor(name), esc(name));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            return alts
                .iter()
                .map(|a| type_of(a, depth))
                .collect::<Vec<_>>()
                .join(" or ");
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string().replace('"', ""))))
            .collect();
        return format!("one of {}", values.join(", "));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.is_empty() {
        return "any JSON".into();
    }
    types
        .iter()
        .map(|t| match *t {
            "array" => match schema.get("items") {
                Some(items) => format!("array of {}", type_of(items, depth)),
                None => "array".into(),
            },
            "object" => match schema.get("properties").and_then(Value::as_object) {
                Some(props) if depth < 2 && !props.is_empty() => {
                    let fields: Vec<String> = props
                        .iter()
                        .map(|(k, v)| format!("{}: {}", esc(k), type_of(v, depth + 1)))
                        .collect();
                    format!("{{{}}}", fields.join(", "))
                }
                _ => "object".into(),
            },
            "null" => "null".into(),
            other => match schema.get("format").and_then(Value::as_str) {
                Some(format) => format!("{} ({})", esc(other), esc(format)),
                None => esc(other).to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Limits of a schema worth a mention (lengths, ranges, patterns).
fn limits(schema: &Value) -> String {
    let mut parts = Vec::new();
    for (key, label) in [
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("maxItems", "max items"),
        ("pattern", "pattern"),
    ] {
        if let Some(v) = schema.get(key) {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            parts.push(format!("{label} <code>{}</code>", esc(&v)));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" <span class=\"muted\">({})</span>", parts.join(", "))
    }
}

fn auth(op: &Value) -> String {
    let Some(reqs) = op.get("security").and_then(Value::as_array) else {
        return "none".into();
    };
    let optional = reqs
        .iter()
        .any(|r| r.as_object().is_some_and(Map::is_empty));
    let names: Vec<&str> = reqs
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|r| r.keys())
        .map(|k| match k.as_str() {
            "jwt" => "JWT",
            "apiKey" => "API key",
            "inboundSecret" => "the inbound mail secret",
            other => other,
        })
        .collect();
    match (optional, names.is_empty()) {
        (_, true) => "none".into(),
        (true, false) => format!("optional ({})", names.join(" or ")),
        (false, false) => names.join(" or "),
    }
}

fn operation(out: &mut String, method: &str, path: &str, op: &Value) {
    let id = str_of(op, "operationId");
    let _ = write!(
        out,
        r#"<section class="op" id="op-{id}"><h3><span class="verb">{method}</span> <code>{path}</code></h3>
<p><strong>{summary}</strong></p>
{description}<p class="muted">Authentication: {auth}</p>
"#,
        id = anchor(id),
        method = esc(method),
        path = esc(path),
        summary = inline(str_of(op, "summary")),
        description = paragraphs(str_of(op, "description")),
        auth = auth(op),
    );
    if let Some(params) = op.get("parameters").and_then(Value::as_array)
        && !params.is_empty()
    {
        out.push_str("<h4>Parameters</h4>\n<table><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr>\n");
        for p in params {
            let schema = p.get("schema").cloned().unwrap_or(Value::Null);
            let required = p.get("required").and_then(Value::as_bool) == Some(true);
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
                esc(str_of(p, "name")),
                if required { " (required)" } else { "" },
                esc(str_of(p, "in")),
                type_of(&schema, 0),
                limits(&schema),
                inline(str_of(p, "description")),
            );
        }
        out.push_str("</table>\n");
    }
    if let Some(body) = op.get("requestBody") {
        out.push_str("<h4>Request body</h4>\n<table>\n");
        for (ctype, content) in body
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let schema = content.get("schema").cloned().unwrap_or(Value::Null);
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                esc(ctype),
                type_of(&schema, 0)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str(
        "<h4>Responses</h4>\n<table><tr><th>status</th><th>meaning</th><th>body</th></tr>\n",
    );
    for (status, response) in op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let bodies: Vec<String> = response
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(ctype, content)| {
                let schema = content.get("schema").cloned().unwrap_or(Value::Null);
                if ctype == "application/json" {
                    type_of(&schema, 0)
                } else {
                    format!("<code>{}</code>", esc(ctype))
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(status),
            inline(str_of(response, "description")),
            if bodies.is_empty() {
                "–".to_string()
            } else {
                bodies.join(", ")
            },
        );
    }
    out.push_str("</table></section>\n");
}

fn schema_section(out: &mut String, name: &str, schema: &Value) {
    let _ = write!(
        out,
        "<section class=\"op\" id=\"schema-{}\"><h3>{}</h3>\n{}",
        anchor(name),
        esc(name),
        paragraphs(str_of(schema, "description")),
    );
    match schema.get("properties").and_then(Value::as_object) {
        Some(props) => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            out.push_str("<table><tr><th>field</th><th>type</th><th>description</th></tr>\n");
            for (field, prop) in props {
                let _ = writeln!(
                    out,
                    "<tr><td><code>{}</code>{}</td><td>{}{}</td><td>{}</td></tr>",
                    esc(field),
                    if required.contains(&field.as_str()) {
                        ""
                    } else {
                        " (optional)"
                    },
                    type_of(prop, 1),
                    limits(prop),
                    inline(str_of(prop, "description")),
                );
            }
            out.push_str("</table>\n");
        }
        None => {
            let _ = writeln!(out, "<p>{}</p>", type_of(schema, 0));
        }
    }
    out.push_str("</section>\n");
}

/// An operation: method, path and the operation object.
type Op = (String, String, Value);

/// The page for `doc` (the OpenAPI document as JSON).
pub fn render(doc: &Value) -> String {
    let info = doc.get("info").cloned().unwrap_or(Value::Null);
    let mut by_tag: Vec<(String, Vec<Op>)> = doc
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| (str_of(t, "name").to_string(), Vec::new()))
        .collect();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let tag = op
                .get("tags")
                .and_then(|t| t.get(0))
                .and_then(Value::as_str)
                .unwrap_or("Other")
                .to_string();
            let entry = (method.to_uppercase(), path.clone(), op.clone());
            match by_tag.iter_mut().find(|(name, _)| *name == tag) {
                Some((_, ops)) => ops.push(entry),
                None => by_tag.push((tag, vec![entry])),
            }
        }
    }
    let mut body = String::new();
    let _ = write!(
        body,
        r#"{STYLE}<div class="ref">
<h1>agenthub API reference</h1>
<p class="muted">OpenAPI {version} · generated from the code: the same document as <a href="/api/v1/openapi.json"><code>/api/v1/openapi.json</code></a> · for agents: <a href="/skill.md"><code>/skill.md</code></a></p>
{overview}
<h2>Operations</h2>
<ul class="toc">
"#,
        version = esc(str_of(doc, "openapi")),
        overview = paragraphs(str_of(&info, "description")),
    );
    for (tag, ops) in &by_tag {
        for (method, path, op) in ops {
            let _ = writeln!(
                body,
                r##"<li><a href="#op-{}"><code>{} {}</code></a> {}</li>"##,
                anchor(str_of(op, "operationId")),
                esc(method),
                esc(path),
                esc(tag),
            );
        }
    }
    body.push_str("</ul>\n");
    let tag_descriptions: Map<String, Value> = doc
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| (str_of(t, "name").to_string(), t.clone()))
        .collect();
    for (tag, ops) in &by_tag {
        if ops.is_empty() {
            continue;
        }
        let _ = write!(
            body,
            "<h2 id=\"tag-{}\">{}</h2>\n{}",
            anchor(tag),
            esc(tag),
            tag_descriptions
                .get(tag)
                .map(|t| paragraphs(str_of(t, "description")))
                .unwrap_or_default()
        );
        for (method, path, op) in ops {
            operation(&mut body, method, path, op);
        }
    }
    body.push_str("<h2 id=\"schemas\">Schemas</h2>\n");
    for (name, schema) in doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        schema_section(&mut body, name, schema);
    }
    body.push_str("</div>\n");
    layout(
        "API reference · agenthub",
        "The agenthub HTTP API: every operation, parameter, body and answer.",
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inline_markdown_escapes_first() {
        assert_eq!(
            inline("a `<b>` **c** <i>"),
            "a <code>&lt;b&gt;</code> <strong>c</strong> &lt;i&gt;"
        );
    }

    #[test]
    fn types_read_as_words_with_links() {
        assert_eq!(
            type_of(
                &json!({"type": "array", "items": {"$ref": "#/components/schemas/Agent"}}),
                0
            ),
            r##"array of <a href="#schema-Agent">Agent</a>"##
        );
        assert_eq!(
            type_of(&json!({"type": ["string", "null"], "enum": ["a", null]}), 0),
            "one of <code>a</code>, <code>null</code>"
        );
        assert_eq!(
            type_of(&json!({"type": "string", "format": "uuid"}), 0),
            "string (uuid)"
        );
        assert_eq!(type_of(&json!({}), 0), "any JSON");
    }
}
