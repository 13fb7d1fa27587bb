//! The fonts embedded at build time (see `build.rs`): the caption font and a wide-coverage
//! fallback, parsed once per process.

use std::sync::OnceLock;

use ab_glyph::FontRef;

include!(concat!(env!("OUT_DIR"), "/font_names.rs"));

/// League Spartan Black (or ExtraBold), from the Debian package `fonts-league-spartan`.
static CAPTION_FONT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/caption-font.otf"));
/// DejaVu Sans Bold, from the Debian package `fonts-dejavu-core`.
static FALLBACK_FONT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fallback-font.ttf"));

/// The parsed fonts. `FontRef` borrows the static bytes, so this is cheap to share across threads.
pub(crate) struct Fonts {
    pub main: FontRef<'static>,
    pub fallback: FontRef<'static>,
}

/// The embedded fonts, parsed on first use.
pub(crate) fn fonts() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| Fonts {
        // The bytes are fixed at build time and checked by the tests, so a failure here is a
        // broken build, not bad input.
        main: FontRef::try_from_slice(CAPTION_FONT).unwrap_or_else(|e| {
            panic!("embedded caption font {CAPTION_FONT_FILE} is invalid: {e}")
        }),
        fallback: FontRef::try_from_slice(FALLBACK_FONT).unwrap_or_else(|e| {
            panic!("embedded fallback font {FALLBACK_FONT_FILE} is invalid: {e}")
        }),
    })
}
