//! Small HTML helpers for the public pages: escaping, the page layout with its inline CSS, and
//! the little pieces (price, stars, online state) the listing and the detail page share.
//!
//! Everything a user wrote goes through [`esc`]; nothing else in the page code builds markup
//! from user text.

use actix_web::{HttpResponse, http::StatusCode};
use std::fmt;

/// Escapes text for HTML content and (double- or single-quoted) attribute values.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = 0;
        for (i, b) in self.0.bytes().enumerate() {
            let rep = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            f.write_str(&self.0[last..i])?;
            f.write_str(rep)?;
            last = i + 1;
        }
        f.write_str(&self.0[last..])
    }
}

pub fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

/// The document's category slugs with their display names.
pub fn category_name(slug: &str) -> &str {
    match slug {
        "data-analysis" => "Data Analysis",
        "code-generation" => "Code Generation",
        "content-writing" => "Content Writing",
        "image-processing" => "Image Processing",
        "research" => "Research",
        "automation" => "Automation",
        "translation" => "Translation",
        "customer-support" => "Customer Support",
        "finance" => "Finance",
        "other" => "Other",
        other => other,
    }
}

/// "Free" or "N tokens/call".
pub fn price(model: &str, price_per_call: i64) -> String {
    if model == "free" || price_per_call == 0 {
        "Free".into()
    } else if price_per_call == 1 {
        "1 token/call".into()
    } else {
        format!("{price_per_call} tokens/call")
    }
}

/// Stars (half steps, 0–5) as five glyphs and the number, or the "New" badge.
pub fn rating(stars: Option<f64>, is_new: bool) -> String {
    match stars {
        Some(s) if !is_new => {
            // Whole stars as glyphs (a half glyph is missing from many phone fonts); the number
            // carries the half step.
            let full = s.floor().clamp(0.0, 5.0) as usize;
            format!(
                r#"<span class="stars" title="{s:.1} of 5 stars"><span aria-hidden="true">{}{}</span> {s:.1}</span>"#,
                "★".repeat(full),
                "☆".repeat(5 - full),
            )
        }
        _ => r#"<span class="badge new">New</span>"#.into(),
    }
}

pub fn online(is_online: bool) -> &'static str {
    if is_online {
        r#"<span class="state on"><span aria-hidden="true">●</span> Online</span>"#
    } else {
        r#"<span class="state off"><span aria-hidden="true">○</span> Offline</span>"#
    }
}

/// At most `max` characters of `s`, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s[..i].trim_end()),
        None => s.to_string(),
    }
}

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#5d6677;--bg:#f6f7f9;--card:#fff;--line:#dde1e7;--accent:#1f5fd1;--ok:#12805c;--warn:#a35200;--bad:#b3261e}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#a0a8b8;--bg:#12151b;--card:#1b1f27;--line:#2d3340;--accent:#7aa7ff;--ok:#4fc38f;--warn:#f0a04b;--bad:#ff8a80}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
header.site,footer.site{background:var(--card);border-bottom:1px solid var(--line)}
footer.site{border-top:1px solid var(--line);border-bottom:0;margin-top:2rem;color:var(--muted);font-size:.9rem}
.wrap{max-width:72rem;margin:0 auto;padding:.75rem 1rem}
header.site .wrap{display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;align-items:center}
header.site .brand{font-weight:700;font-size:1.15rem;text-decoration:none;color:var(--fg);margin-right:auto}
main.wrap{padding-top:1.25rem}
h1{font-size:1.6rem;line-height:1.25;margin:.25rem 0 .5rem;overflow-wrap:anywhere}
h2{font-size:1.2rem;margin:1.75rem 0 .6rem}
p{margin:.4rem 0}
.muted{color:var(--muted)}
code,pre{font:.88rem/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.75rem;overflow-x:auto;white-space:pre}
.prose{white-space:pre-wrap;overflow-wrap:anywhere}
form.filters{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.5rem;align-items:end;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.75rem;margin:.75rem 0}
form.filters label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted);gap:.15rem}
form.filters label.check{flex-direction:row;align-items:center;gap:.4rem;color:var(--fg);font-size:1rem}
form.filters details{grid-column:1/-1}
form.filters details>div{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.5rem;margin-top:.5rem}
input,select,button{font:inherit;padding:.45rem .55rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg);min-width:0;width:100%}
input[type=checkbox]{width:auto}
button{background:var(--accent);border-color:var(--accent);color:#fff;cursor:pointer;font-weight:600}
.chips{display:flex;flex-wrap:wrap;gap:.4rem;margin:.5rem 0 1rem;padding:0;list-style:none}
.chips a{display:inline-block;padding:.2rem .65rem;border:1px solid var(--line);border-radius:999px;text-decoration:none;background:var(--card);font-size:.9rem}
.chips a[aria-current]{background:var(--accent);border-color:var(--accent);color:#fff}
ul.grid{list-style:none;padding:0;margin:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,20rem),1fr));gap:.75rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.85rem 1rem;display:flex;flex-direction:column;gap:.35rem;min-width:0}
.card .name{font-weight:650;font-size:1.05rem;overflow-wrap:anywhere}
.row{display:flex;flex-wrap:wrap;gap:.35rem .9rem;align-items:center}
.row.between{justify-content:space-between}
.desc{color:var(--muted);overflow-wrap:anywhere;margin:0}
.state.on{color:var(--ok);font-weight:600}
.state.off{color:var(--muted)}
.price{font-weight:600}
.stars{color:#c98a00;white-space:nowrap}
.badge{display:inline-block;padding:0 .5rem;border-radius:999px;font-size:.8rem;font-weight:700;border:1px solid currentColor}
.badge.new{color:var(--ok)}
.badge.warn{color:var(--warn)}
.tags{display:flex;flex-wrap:wrap;gap:.3rem}
.tags a{font-size:.82rem;text-decoration:none;background:var(--bg);border:1px solid var(--line);border-radius:4px;padding:0 .4rem;overflow-wrap:anywhere}
nav.pager{display:flex;flex-wrap:wrap;gap:.5rem 1rem;justify-content:center;align-items:center;margin:1.25rem 0}
nav.pager a,nav.pager span.off{padding:.35rem .8rem;border:1px solid var(--line);border-radius:6px;background:var(--card);text-decoration:none}
nav.pager span.off{color:var(--muted)}
.notice{border:1px solid var(--warn);color:var(--warn);background:var(--card);border-radius:6px;padding:.5rem .75rem;margin:.75rem 0}
.notice.error{border-color:var(--bad);color:var(--bad)}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);border-radius:6px}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);width:45%}
.tool{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.6rem .85rem;margin:.5rem 0}
.tool summary{cursor:pointer;overflow-wrap:anywhere}
.review{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.6rem .85rem;margin:.5rem 0}
.links{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,15rem),1fr));gap:.75rem;margin:1rem 0}
.links a{display:block;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem;text-decoration:none;color:var(--fg)}
.links a strong{color:var(--accent);font-size:1.1rem}
.healthy{color:var(--ok);font-weight:600}
.unhealthy{color:var(--bad);font-weight:600}
@media (max-width:40rem){h1{font-size:1.35rem}main.wrap{padding-top:.75rem}th{width:50%}}
"#;

/// A whole page: the header with the site links, `body` and the footer.
pub fn layout(title: &str, description: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<meta name="description" content="{description}">
<style>{CSS}</style>
</head>
<body>
<header class="site"><div class="wrap">
<a class="brand" href="/">agenthub</a>
<a href="/marketplace">Marketplace</a>
<a href="/skill.md">skill.md</a>
</div></header>
<main class="wrap">
{body}
</main>
<footer class="site"><div class="wrap">agenthub: a realtime dispatch hub for AI agents. Virtual tokens, no real money. <a href="/health">Status</a></div></footer>
</body>
</html>
"#,
        title = esc(title),
        description = esc(description),
    )
}

/// An HTML response with the security headers every page carries (no script may run at all).
pub fn respond(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .body(html)
}

/// A page for an error: its status, a heading and a message.
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        r#"<h1>{code} {reason}</h1>
<p class="notice error">{message}</p>
<p><a href="/marketplace">Back to the marketplace</a> · <a href="/">Home</a></p>"#,
        code = status.as_u16(),
        reason = esc(reason),
        message = esc(message),
    );
    respond(
        status,
        layout(&format!("{reason} · agenthub"), message, &body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x&'y")</script>"#).to_string(),
            "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;"
        );
        assert_eq!(esc("plain ü").to_string(), "plain ü");
    }

    #[test]
    fn prices_and_ratings() {
        assert_eq!(price("free", 0), "Free");
        assert_eq!(price("per-call", 20), "20 tokens/call");
        assert!(rating(None, true).contains("New"));
        let r = rating(Some(3.5), false);
        assert!(r.contains("★★★☆☆") && r.contains("3.5"), "{r}");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("äöü", 2), "äö…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
