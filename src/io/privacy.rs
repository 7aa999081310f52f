//! Keeping identifiers out of reports under `--anonymize` (DICOM PS3.15 Annex E applies to
//! the written headers; this module covers the text medsgm itself prints and writes to
//! `summary.json`). Input file and folder names are often patient names or record numbers,
//! and readers' error messages may quote header values (UIDs, raw text), so a report line
//! about an anonymised input goes through [`scrub`] first.

use std::path::Path;

/// Stands in for a quoted value or a UID removed from a message.
pub const REDACTED: &str = "<redacted>";

/// `text` with every mention of the input `path` (the path as given, its canonical form, any
/// longer path below it, its file name and stem) replaced by `pseudonym`, every UID-like
/// token (digits with three or more dots, e.g. `1.2.840.113619.2.55`) and every quoted value
/// (`"…"`, `'…'`, `` `…` ``) replaced by [`REDACTED`].
pub fn scrub(text: &str, path: &Path, pseudonym: &str) -> String {
    let mut out = text.to_owned();
    let mut paths: Vec<String> = vec![path.display().to_string()];
    if let Ok(c) = path.canonicalize() {
        paths.push(c.display().to_string());
    }
    let mut names: Vec<String> = vec![];
    if let Some(name) = path.file_name() {
        names.push(name.to_string_lossy().into_owned());
    }
    if let Some(stem) = path.file_stem() {
        let stem = stem.to_string_lossy();
        // `a.nii.gz` → `a`
        names.push(stem.split('.').next().unwrap_or(&stem).to_owned());
    }
    // longest first, so a path is replaced whole before its file name is looked for
    for (spellings, whole_word) in [(paths, false), (names, true)] {
        let mut spellings: Vec<String> = spellings.into_iter().filter(|s| !s.is_empty()).collect();
        spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in &spellings {
            out = replace_with_tail(&out, s, pseudonym, whole_word);
        }
    }
    redact_quoted(&redact_uids(&out))
}

/// Replaces each occurrence of `needle` (with `whole_word`, only where no letter or digit
/// touches it), and the path characters that follow it (a file inside an input folder), by
/// `with`.
fn replace_with_tail(text: &str, needle: &str, with: &str, whole_word: bool) -> String {
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(needle) {
        let after = &rest[i + needle.len()..];
        if whole_word && (word(rest[..i].chars().next_back()) || word(after.chars().next())) {
            out.push_str(&rest[..i + needle.len()]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..i]);
        out.push_str(with);
        let tail = after
            .find(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | ';' | ')' | '"' | '\''))
            .unwrap_or(after.len());
        rest = &after[tail..];
    }
    out.push_str(rest);
    out
}

/// Replaces tokens of digits and dots with at least three dots by [`REDACTED`].
fn redact_uids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        let dots = token.matches('.').count();
        let digits = token.chars().filter(char::is_ascii_digit).count();
        if dots >= 3 && digits >= 4 {
            out.push_str(REDACTED);
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// Replaces the content of quoted values by [`REDACTED`] (an unmatched quote is kept).
fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['"', '\'', '`']) {
        let quote = rest[i..].chars().next().unwrap_or('"');
        let after = &rest[i + 1..];
        match after.find(quote) {
            Some(j) => {
                out.push_str(&rest[..=i]);
                out.push_str(REDACTED);
                out.push(quote);
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_uids_and_quoted_values_are_removed() {
        let path = Path::new("/data/DOE^JOHN_12345/ct");
        let msg = "cannot read /data/DOE^JOHN_12345/ct/IM0001.dcm: RescaleSlope \"NaN\" of \
                   series 1.2.840.113619.2.55.3 in ct ('DOE^JOHN'); 2.5 mm, v0.1.2, object";
        let s = scrub(msg, path, "case_0007");
        assert!(!s.contains("DOE"), "{s}");
        assert!(!s.contains("113619"), "{s}");
        assert!(!s.contains("NaN"), "{s}");
        assert!(s.starts_with("cannot read case_0007: RescaleSlope"), "{s}");
        // numbers that are not UIDs stay
        assert!(s.contains("2.5 mm") && s.contains("v0.1.2"), "{s}");
        // the short stem `ct` is replaced as a word, not inside `object`
        assert!(s.contains("in case_0007") && s.ends_with("object"), "{s}");
    }

    #[test]
    fn the_file_name_and_stem_alone_are_replaced() {
        let path = Path::new("in/SMITH_ANN.nii.gz");
        let s = scrub(
            "SMITH_ANN.nii.gz is not NIfTI-1; SMITH_ANN failed",
            path,
            "case_0002",
        );
        assert_eq!(s, "case_0002 is not NIfTI-1; case_0002 failed");
    }
}
