//! Text from clients that people read (client names, URIs, IdP messages):
//! characters that steer how text is displayed instead of being text — C0/C1
//! controls, Unicode format characters (category Cf: the bidirectional
//! overrides and isolates U+202A–202E and U+2066–2069, the marks U+200E/F and
//! U+061C, zero-width characters, the BOM, tags…) and the line and paragraph
//! separators — are refused at registration and neutralised when shown, so a
//! name like "Evil\u{202E}gpj.exe" cannot pass for another.

/// Unicode general category Cf (Unicode 15.1), as ranges.
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// A format character (Unicode category Cf).
pub fn is_format(c: char) -> bool {
    let c = c as u32;
    FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// A character that is not shown as itself: a control (Cc), a format
/// character (Cf) or a line/paragraph separator (Zl, Zp).
pub fn is_hidden_control(c: char) -> bool {
    c.is_control() || is_format(c) || c == '\u{2028}' || c == '\u{2029}'
}

/// Whether `s` contains any [`is_hidden_control`] character.
pub fn has_hidden_controls(s: &str) -> bool {
    s.chars().any(is_hidden_control)
}

/// `s` for display: every hidden control replaced by U+FFFD, so it is
/// visible that something was there and it steers nothing. Still needs HTML
/// escaping.
pub fn neutralise(s: &str) -> String {
    s.chars().map(|c| if is_hidden_control(c) { '\u{FFFD}' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_format_controls_are_hidden_controls() {
        for c in [
            '\u{202E}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{061C}',
            '\u{200B}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0041}',
            '\u{2028}',
            '\u{2029}',
            '\u{0000}',
            '\u{001B}',
            '\u{007F}',
            '\u{0085}',
            '\u{009B}',
        ] {
            assert!(is_hidden_control(c), "U+{:04X}", c as u32);
        }
        for c in ['a', 'é', 'ß', 'ا', 'א', '日', '😀', ' ', '\u{00A0}', '\u{FFFD}', '-', '\u{2010}', '\u{1F468}']
        {
            assert!(!is_hidden_control(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn table_is_sorted_and_disjoint() {
        assert!(FORMAT.windows(2).all(|w| w[0].1 < w[1].0) && FORMAT.iter().all(|(lo, hi)| lo <= hi));
    }

    #[test]
    fn neutralise_replaces_only_hidden_controls() {
        assert_eq!(neutralise("Evil\u{202E}gpj.exe"), "Evil\u{FFFD}gpj.exe");
        assert_eq!(neutralise("a\u{2066}b\u{2069}c\u{200F}\n"), "a\u{FFFD}b\u{FFFD}c\u{FFFD}\u{FFFD}");
        assert_eq!(neutralise("Claude — Code (日本語, עברית)"), "Claude — Code (日本語, עברית)");
        assert!(has_hidden_controls("x\u{061C}y") && !has_hidden_controls("MCP Inspector"));
    }
}
