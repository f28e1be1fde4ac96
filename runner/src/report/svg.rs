//! The little SVG the timing stages write by themselves (bench's flame graph, soak's memory
//! plot): text escaping and a stable colour per name.

/// SVG is XML: its text and attribute values are escaped like the `JUnit` report's.
pub use crate::report::junit::escape;

/// A warm colour derived from a name, so a function keeps its colour between graphs.
pub fn warm_colour(name: &str) -> String {
    let hash = crate::hash::digest(&[name]);
    let byte = |index: usize| u32::from_str_radix(hash.get(index..index + 2).unwrap_or("80"), 16);
    let (a, b) = (byte(0).unwrap_or(128), byte(2).unwrap_or(128));
    format!("rgb({},{},{})", 205 + a % 50, 80 + b % 130, 40 + a % 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_colours_stably() {
        assert_eq!(
            escape("<a as B>::f & \"x\""),
            "&lt;a as B&gt;::f &amp; &quot;x&quot;"
        );
        assert_eq!(warm_colour("main"), warm_colour("main"));
        assert!(warm_colour("main").starts_with("rgb("));
    }
}
