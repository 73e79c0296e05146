//! Passwords out of what people see: every URL shown in a log line, an error or `/health`
//! goes through here, so a password is masked the same way wherever it appears — in the
//! user part (`postgres://hp:***@db/h`) and in the query (`?password=***`, `sslpassword=***`).

/// What replaces a password.
pub const MASK: &str = "***";

/// True for a query key (or libpq `key=value` key) whose value is a password: `password`,
/// `sslpassword`, `passwd`, … in any case.
fn is_password_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key.contains("passwd")
}

/// The URL as it may be shown: its password and every password in its query masked; the
/// rest (scheme, user, host, port, path, other options) kept, since that is what tells the
/// reader which server was meant.
pub fn url(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some(MASK));
    }
    if shown.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_password_key(&k) {
                    MASK.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // `***` is kept readable rather than percent-encoded by the query serializer.
    shown.to_string().replace("%2A%2A%2A", MASK)
}

/// Every password a URL carries, as written and percent-decoded, so that text a driver
/// produced from it (which may quote either form) can be masked with [`text`].
pub fn url_secrets(raw: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(raw) else {
        return Vec::new();
    };
    let mut secrets = Vec::new();
    if let Some(password) = url.password() {
        secrets.push(password.to_owned());
        secrets.push(percent_decode(password));
    }
    if let Some(query) = url.query() {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=') {
                if is_password_key(key) && !value.is_empty() {
                    secrets.push(value.to_owned());
                }
            }
        }
        for (key, value) in url.query_pairs() {
            if is_password_key(&key) && !value.is_empty() {
                secrets.push(value.into_owned());
            }
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    // Longest first, so a secret that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// `%40` → `@` (a `+` stays a `+`: user info is not form-encoded).
fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("p={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(|| text.to_owned(), |(_, v)| v.into_owned())
}

/// Free text (a driver's error, a log message) with every known secret, every password in a
/// `scheme://user:password@host` URL and every `password=value` masked.
pub fn text(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), MASK);
    }
    mask_key_values(&mask_userinfo(&out))
}

/// `scheme://user:password@` → `scheme://user:***@`.
fn mask_userinfo(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        masked.push_str(head);
        // The authority ends at the first '/', '?', '#', whitespace or quote; a password sits
        // between the first ':' and the last '@' inside it.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                masked.push_str(&authority[..=colon]);
                masked.push_str(MASK);
                masked.push_str(&authority[at..]);
            }
            _ => masked.push_str(authority),
        }
        rest = &tail[end..];
    }
    masked.push_str(rest);
    masked
}

/// `password=value` (in a query, or libpq's `key=value` form) → `password=***`; the value
/// ends at `&`, `;`, `,`, whitespace or a quote.
fn mask_key_values(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let (head, tail) = rest.split_at(eq);
        let key_start = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or(0, |i| i + 1);
        masked.push_str(head);
        masked.push('=');
        let tail = &tail[1..];
        if is_password_key(&head[key_start..]) {
            // A quoted value (libpq's `password='a b'`) ends at its closing quote.
            if let Some(quote) = tail.chars().next().filter(|c| matches!(c, '\'' | '"')) {
                masked.push(quote);
                masked.push_str(MASK);
                rest = match tail[1..].find(quote) {
                    Some(i) => {
                        masked.push(quote);
                        &tail[i + 2..]
                    }
                    None => "",
                };
                continue;
            }
            let end = tail
                .find(|c: char| matches!(c, '&' | ';' | ',' | '"' | '\'') || c.is_whitespace())
                .unwrap_or(tail.len());
            if end > 0 {
                masked.push_str(MASK);
            }
            rest = &tail[end..];
        } else {
            rest = tail;
        }
    }
    masked.push_str(rest);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(raw: &str) -> String {
        url(&url::Url::parse(raw).expect("a URL"))
    }

    #[test]
    fn a_url_keeps_everything_but_its_passwords() {
        assert_eq!(
            shown("postgres://hp:s3cret@db:5432/h"),
            "postgres://hp:***@db:5432/h"
        );
        assert_eq!(
            shown("postgres://hp@db/h?password=s3cret&sslmode=require"),
            "postgres://hp@db/h?password=***&sslmode=require"
        );
        assert_eq!(
            shown("postgres://db/h?user=hp&PassWord=a%26b&sslpassword=k3y"),
            "postgres://db/h?user=hp&PassWord=***&sslpassword=***"
        );
        assert_eq!(
            shown("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(shown("amqp://127.0.0.1/%2f"), "amqp://127.0.0.1/%2f");
    }

    #[test]
    fn the_secrets_of_a_url_are_found_in_both_forms() {
        let secrets = url_secrets("postgres://hp:p%40ss@db/h?password=q%26r&sslmode=require");
        for expected in ["p%40ss", "p@ss", "q%26r", "q&r"] {
            assert!(
                secrets.iter().any(|s| s == expected),
                "{expected}: {secrets:?}"
            );
        }
        assert!(!secrets.iter().any(|s| s == "require"), "{secrets:?}");
        assert!(url_secrets("not a url").is_empty());
    }

    #[test]
    fn text_is_masked_wherever_a_password_sits() {
        let text_in = "error connecting to postgres://hp:s3cret@db:5432/h (password s3cret) \
                       and amqp://guest@x/ and postgres://db/h?sslmode=disable&password=t0p \
                       or host=db password='q1' user=hp";
        let masked = text(text_in, &["s3cret".into()]);
        for secret in ["s3cret", "t0p", "q1"] {
            assert!(!masked.contains(secret), "{secret}: {masked}");
        }
        assert!(masked.contains("postgres://hp:***@db:5432/h"), "{masked}");
        assert!(masked.contains("amqp://guest@x/"), "{masked}");
        assert!(masked.contains("sslmode=disable&password=***"), "{masked}");
        assert_eq!(
            text("postgres://u:p%40ss@h/db failed", &[]),
            "postgres://u:***@h/db failed"
        );
        assert_eq!(text("a = b, c=d", &[]), "a = b, c=d");
    }
}
