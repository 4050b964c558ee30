//! What a fetched body is (HTML, Markdown, plain text, or something refused) and how its bytes
//! become text: the charset from the `Content-Type` header, a byte-order mark or an HTML
//! `<meta>` tag, else UTF-8 when the bytes are valid UTF-8, else windows-1252; malformed
//! sequences are replaced, never an error.

use encoding_rs::Encoding;

/// The kinds of page a fetch accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    Html,
    Markdown,
    Text,
}

/// A parsed `Content-Type` header: the lowercase media type and its charset parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct MediaType {
    pub essence: String,
    pub charset: Option<String>,
}

pub(crate) fn parse_content_type(value: &str) -> MediaType {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let charset = parts.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).to_string())
            .filter(|charset| !charset.is_empty())
    });
    MediaType { essence, charset }
}

/// The kind of a declared media type: `Ok(None)` when none was declared (sniff the body),
/// `Err(())` for a type that is refused.
pub(crate) fn kind_of_media_type(essence: &str) -> Result<Option<PageKind>, ()> {
    match essence {
        "" => Ok(None),
        "text/html" | "application/xhtml+xml" => Ok(Some(PageKind::Html)),
        "text/markdown" | "text/x-markdown" => Ok(Some(PageKind::Markdown)),
        "text/plain" => Ok(Some(PageKind::Text)),
        // Servers label unknown files this way; the body decides.
        "application/octet-stream" | "binary/octet-stream" => Ok(None),
        _ => Err(()),
    }
}

/// Whether the start of `body` looks binary: a NUL byte, or the signature of a common binary
/// format. Bodies in UTF-16/32 (which contain NULs) must not be checked with this.
pub(crate) fn looks_binary(body: &[u8]) -> bool {
    const SIGNATURES: &[&[u8]] = &[
        b"%PDF-",
        b"\x89PNG",
        b"GIF87a",
        b"GIF89a",
        b"\xff\xd8\xff",
        b"PK\x03\x04",
        b"\x1f\x8b",
        b"\x7fELF",
        b"BZh",
        b"\xfd7zXZ",
        b"(\xb5/\xfd",
        b"RIFF",
        b"\x00asm",
        b"wOFF",
        b"wOF2",
    ];
    let head = &body[..body.len().min(8192)];
    head.contains(&0)
        || SIGNATURES
            .iter()
            .any(|signature| head.starts_with(signature))
}

/// The kind of an undeclared body, from its first bytes.
pub(crate) fn sniff_kind(body: &[u8], url_path: &str) -> PageKind {
    let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_ascii_lowercase();
    let trimmed = head.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with("<!doctype html")
        || trimmed.starts_with("<html")
        || trimmed.starts_with("<head")
        || trimmed.contains("<body")
    {
        return PageKind::Html;
    }
    let path = url_path.to_ascii_lowercase();
    if path.ends_with(".md") || path.ends_with(".markdown") {
        return PageKind::Markdown;
    }
    if path.ends_with(".html") || path.ends_with(".htm") {
        return PageKind::Html;
    }
    PageKind::Text
}

/// Whether `label` names a UTF-16 encoding (whose text has NUL bytes).
pub(crate) fn is_wide_encoding(label: Option<&str>, body: &[u8]) -> bool {
    let by_label = label
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .is_some_and(|encoding| {
            encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE
        });
    by_label || body.starts_with(b"\xff\xfe") || body.starts_with(b"\xfe\xff")
}

/// The charset an HTML document declares in a `<meta>` tag within its first 1024 bytes (the
/// prescan of the HTML standard, simplified).
pub(crate) fn meta_charset(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(1024)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("<meta") {
        let after = &rest[start + 5..];
        let end = after.find('>').unwrap_or(after.len());
        let tag = &after[..end];
        if let Some(position) = tag.find("charset") {
            let value = tag[position + "charset".len()..].trim_start();
            if let Some(value) = value.strip_prefix('=') {
                let value = value.trim_start().trim_start_matches(['"', '\'']);
                let charset: String = value
                    .chars()
                    .take_while(|c| !matches!(c, '"' | '\'' | ';' | ' ' | '/' | '>'))
                    .collect();
                if !charset.is_empty() {
                    return Some(charset);
                }
            }
        }
        rest = &after[end..];
    }
    None
}

/// Decodes `body` lossily; returns the text and the name of the encoding used. A UTF-8 or
/// UTF-16 byte-order mark wins over declarations, as browsers do.
pub(crate) fn decode(
    body: &[u8],
    header_charset: Option<&str>,
    kind: PageKind,
) -> (String, &'static str) {
    let declared = header_charset
        .and_then(|label| Encoding::for_label(label.trim().as_bytes()))
        .or_else(|| {
            (kind == PageKind::Html)
                .then(|| meta_charset(body))
                .flatten()
                .and_then(|label| Encoding::for_label(label.as_bytes()))
        })
        // A page cannot really be in UTF-16 when its meta tag is readable as ASCII.
        .map(|encoding| {
            if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
                if header_charset.is_some() {
                    encoding
                } else {
                    encoding_rs::UTF_8
                }
            } else {
                encoding
            }
        });
    let encoding = declared.unwrap_or_else(|| {
        if std::str::from_utf8(body).is_ok() || utf8_until_cut(body) {
            encoding_rs::UTF_8
        } else {
            encoding_rs::WINDOWS_1252
        }
    });
    let (text, used, _had_errors) = encoding.decode(body);
    (text.into_owned(), used.name())
}

/// Whether `body` is valid UTF-8 except for an incomplete sequence at its very end (a body cut
/// at the size limit).
fn utf8_until_cut(body: &[u8]) -> bool {
    match std::str::from_utf8(body) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let media = parse_content_type("Text/HTML; Charset=\"ISO-8859-1\"");
        assert_eq!(media.essence, "text/html");
        assert_eq!(media.charset.as_deref(), Some("ISO-8859-1"));
        assert_eq!(kind_of_media_type("text/html"), Ok(Some(PageKind::Html)));
        assert_eq!(
            kind_of_media_type("application/xhtml+xml"),
            Ok(Some(PageKind::Html))
        );
        assert_eq!(
            kind_of_media_type("text/markdown"),
            Ok(Some(PageKind::Markdown))
        );
        assert_eq!(kind_of_media_type("image/png"), Err(()));
        assert_eq!(kind_of_media_type("application/pdf"), Err(()));
        assert_eq!(kind_of_media_type(""), Ok(None));
    }

    #[test]
    fn binary_sniffing() {
        assert!(looks_binary(b"%PDF-1.7 ..."));
        assert!(looks_binary(b"<html>\0</html>"));
        assert!(looks_binary(b"\x1f\x8b\x08\x00"));
        assert!(!looks_binary(b"<html><body>caf\xc3\xa9</body></html>"));
        assert!(is_wide_encoding(None, b"\xff\xfe<\0h\0"));
        assert!(is_wide_encoding(Some("utf-16le"), b"<\0"));
        assert!(!is_wide_encoding(Some("utf-8"), b"<"));
    }

    #[test]
    fn kinds_are_sniffed() {
        assert_eq!(sniff_kind(b"<!DOCTYPE html><html>", "/"), PageKind::Html);
        assert_eq!(
            sniff_kind(b"# Title\n\ntext", "/README.md"),
            PageKind::Markdown
        );
        assert_eq!(sniff_kind(b"just words", "/notes"), PageKind::Text);
    }

    #[test]
    fn charsets() {
        let latin1 = b"<html><head><meta charset=\"iso-8859-1\"></head><body>caf\xe9</body></html>";
        let (text, used) = decode(latin1, None, PageKind::Html);
        assert!(text.contains("café"), "{text}");
        assert_eq!(used, "windows-1252");
        let http_equiv =
            b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1251\">\xcf\xf0\xe8";
        let (text, used) = decode(http_equiv, None, PageKind::Html);
        assert_eq!(used, "windows-1251");
        assert!(text.ends_with("При"), "{text}");
        let (text, _) = decode(b"caf\xe9", Some("latin1"), PageKind::Text);
        assert_eq!(text, "café");
        let (text, used) = decode(
            b"broken \xff\xfe utf-8 \xc3\xa9",
            Some("utf-8"),
            PageKind::Text,
        );
        assert_eq!(used, "UTF-8");
        assert!(text.contains('\u{fffd}') && text.ends_with('é'));
        // Undeclared: valid UTF-8 stays UTF-8 (even cut mid-character), else windows-1252.
        assert_eq!(decode("naïve".as_bytes(), None, PageKind::Text).1, "UTF-8");
        assert_eq!(decode(b"caf\xc3", None, PageKind::Text).1, "UTF-8");
        assert_eq!(decode(b"caf\xe9!", None, PageKind::Text).0, "café!");
        assert_eq!(meta_charset(b"<meta charset=utf-8>"), Some("utf-8".into()));
        assert_eq!(meta_charset(b"<meta name=x>"), None);
    }
}
