//! Tests of the caption and title-card renderer.

use super::*;
use crate::pages::Word;

fn renderer() -> CaptionRenderer {
    CaptionRenderer::new(CaptionStyle::default())
}

fn page(texts: &[&str]) -> Page {
    let words: Vec<Word> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Word {
            text: (*t).to_string(),
            start_ms: i as u64 * 300,
            end_ms: i as u64 * 300 + 300,
            sentence_end: false,
        })
        .collect();
    Page {
        start_ms: 0,
        end_ms: words.len() as u64 * 300,
        words,
    }
}

fn pixels(s: &Sprite) -> impl Iterator<Item = (u32, u32, [u8; 4])> + '_ {
    (0..s.height)
        .flat_map(move |y| (0..s.width).map(move |x| (x, y, s.pixel(x, y).unwrap_or_default())))
}

fn visible(s: &Sprite) -> usize {
    pixels(s).filter(|p| p.2[3] > 0).count()
}

/// Checks the sprite contract: buffer size, premultiplied bytes, zero transparent pixels, inside
/// the frame and the safe area.
fn check_sprite(r: &CaptionRenderer, s: &Sprite) {
    assert_eq!(s.rgba.len(), s.width as usize * s.height as usize * 4);
    for (x, y, p) in pixels(s) {
        if p[3] == 0 {
            assert_eq!(p, [0, 0, 0, 0], "transparent pixel ({x},{y}) is not zero");
        }
        assert!(
            p[0] <= p[3] && p[1] <= p[3] && p[2] <= p[3],
            "pixel ({x},{y}) {p:?} is not premultiplied"
        );
    }
    if s.is_empty() {
        return;
    }
    let st = r.style();
    assert!(s.x >= 0 && s.y >= 0, "{},{}", s.x, s.y);
    assert!(s.x as u32 + s.width <= st.frame_width && s.y as u32 + s.height <= st.frame_height);
    let safe = r.safe_rect();
    assert!(
        s.x as f32 >= safe.x0.floor() && (s.x as u32 + s.width) as f32 <= safe.x1.ceil(),
        "x {}..{} outside {safe:?}",
        s.x,
        s.x as u32 + s.width
    );
    assert!(
        s.y as f32 >= safe.y0.floor() && (s.y as u32 + s.height) as f32 <= safe.y1.ceil(),
        "y {}..{} outside {safe:?}",
        s.y,
        s.y as u32 + s.height
    );
}

#[test]
fn renderer_is_shareable() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<CaptionRenderer>();
    assert_send_sync_clone::<Sprite>();
}

#[test]
fn embedded_fonts_parse() {
    assert!(
        crate::EMBEDDED_FONTS[0].starts_with("LeagueSpartan-"),
        "{:?}",
        crate::EMBEDDED_FONTS
    );
    assert_eq!(crate::EMBEDDED_FONTS[1], "DejaVuSans-Bold.ttf");
    let m = text::metrics(100.0);
    assert!(m.cap_height > 50.0 && m.cap_height < 90.0, "{m:?}");
}

#[test]
fn page_sprite_has_highlight_fill_and_outline() {
    let r = renderer();
    let s = r.render_page(&page(&["one", "two", "three"]), 1);
    check_sprite(&r, &s);
    let style = r.style();
    let rgb = |c: Rgba| [c[0], c[1], c[2], 255];
    let hi: Vec<u32> = pixels(&s)
        .filter(|p| p.2 == rgb(style.highlight))
        .map(|p| p.0)
        .collect();
    let white = pixels(&s).filter(|p| p.2 == rgb(style.fill)).count();
    let dark = pixels(&s)
        .filter(|p| p.2[3] == 255 && p.2[0] < 30 && p.2[1] < 30 && p.2[2] < 30)
        .count();
    assert!(hi.len() > 1000, "{} highlight pixels", hi.len());
    assert!(white > 2000, "{white} white pixels");
    assert!(dark > 2000, "{dark} outline pixels");
    // The highlighted word is the middle one.
    let mean = hi.iter().map(|&x| x as f32).sum::<f32>() / hi.len() as f32 / s.width as f32;
    assert!((0.3..0.6).contains(&mean), "highlight centred at {mean}");
    // Highlighting the first word moves the highlight to the left.
    let s0 = r.render_page(&page(&["one", "two", "three"]), 0);
    let hi0: Vec<u32> = pixels(&s0)
        .filter(|p| p.2 == rgb(style.highlight))
        .map(|p| p.0)
        .collect();
    let mean0 = hi0.iter().map(|&x| x as f32).sum::<f32>() / hi0.len() as f32 / s0.width as f32;
    assert!(mean0 < 0.3, "{mean0}");
    // Out of range: no highlight at all.
    let none = r.render_page(&page(&["one", "two"]), 7);
    assert_eq!(
        pixels(&none)
            .filter(|p| p.2 == rgb(style.highlight))
            .count(),
        0
    );
}

#[test]
fn page_sits_a_bit_below_the_middle() {
    let r = renderer();
    let s = r.render_page(&page(&["hello", "world"]), 0);
    let mid_y = s.y as f32 + s.height as f32 / 2.0;
    assert!((0.54 * 1920.0..0.62 * 1920.0).contains(&mid_y), "{mid_y}");
    let mid_x = s.x as f32 + s.width as f32 / 2.0;
    let safe = r.safe_rect();
    assert!((mid_x - (safe.x0 + safe.x1) / 2.0).abs() < 3.0, "{mid_x}");
    // Big: capitals about 0.09 of the width tall, so ~65-75 px of cap height at 1080.
    assert!(s.height > 90 && s.height < 180, "{}", s.height);
}

#[test]
fn outline_is_thick_and_smooth() {
    let r = renderer();
    let s = r.render_page(&page(&["I"]), 9);
    // Across the middle row: transparent, outline (dark), fill, outline, transparent. The dark
    // band on each side is about 0.09 em = 8-9 px.
    let y = s.height / 2;
    let row: Vec<[u8; 4]> = (0..s.width).filter_map(|x| s.pixel(x, y)).collect();
    let first_fill = row.iter().position(|p| p[0] > 200).unwrap();
    let first_ink = row.iter().position(|p| p[3] > 128).unwrap();
    let band = first_fill - first_ink;
    assert!(
        (7..=12).contains(&band),
        "outline band {band} px in {row:?}"
    );
}

#[test]
fn sizes_follow_the_frame_width() {
    let big = renderer();
    let small = CaptionRenderer::new(CaptionStyle::for_frame(540, 960));
    let p = page(&["same", "words"]);
    let (a, b) = (big.render_page(&p, 0), small.render_page(&p, 0));
    check_sprite(&small, &b);
    let ratio = b.width as f32 / a.width as f32;
    assert!((0.45..0.55).contains(&ratio), "{ratio}");
    let ratio_y = b.y as f32 / a.y as f32;
    assert!((0.48..0.52).contains(&ratio_y), "{ratio_y}");
}

#[test]
fn measure_matches_the_page_config() {
    let r = renderer();
    let gap = text::word_gap(r.em);
    let sum = r.measure("AB") + gap + r.measure("cd");
    assert!((r.measure("ab  cd") - sum).abs() < 0.01);
    assert_eq!(r.measure(""), 0.0);
    // A page planned to fit renders on one line at full size.
    let cfg = r.page_config();
    assert!(
        cfg.max_width_px > 600.0 && cfg.max_width_px < 853.0,
        "{}",
        cfg.max_width_px
    );
    let one_line = r.render_page(&page(&["short", "text"]), 0);
    assert!(r.measure("short text") <= cfg.max_width_px);
    assert!(one_line.height < 180);
}

#[test]
fn too_wide_pages_wrap_and_long_words_shrink() {
    let r = renderer();
    let wide = page(&["unbelievable", "understanding", "everywhere"]);
    assert!(r.measure(&wide.text()) > r.page_config().max_width_px);
    let s = r.render_page(&wide, 2);
    check_sprite(&r, &s);
    assert!(
        s.height > 180,
        "wrapped page should take 2+ lines, got {} px",
        s.height
    );

    let long = page(&["abcdefghijklmnopqrstuvwxyzabcd"]);
    let s = r.render_page(&long, 0);
    check_sprite(&r, &s);
    assert!(
        s.height < 120,
        "a shrunk single word stays one line: {} px",
        s.height
    );
    assert!(visible(&s) > 1000);
}

#[test]
fn unicode_renders_or_degrades_visibly() {
    let r = renderer();
    let cases = [
        "naïve café",
        "Straße",
        "😀",
        "日本語",
        "ﷺ",
        "שלום",
        "e\u{301}",
        "abcdefghijklmnopqrstuvwxyzabcd",
        "👨\u{200d}👩\u{200d}👧 ok",
        "\u{0}\u{7}x\u{202e}y",
    ];
    for text in cases {
        let words: Vec<&str> = text.split(' ').collect();
        let s = r.render_page(&page(&words), 0);
        check_sprite(&r, &s);
        assert!(
            visible(&s) > 300,
            "{text:?} rendered {} visible pixels",
            visible(&s)
        );
        let card = r.render_title_card(text, text);
        check_sprite(&r, &card);
    }
    let huge = "x".repeat(10_000);
    let s = r.render_page(&page(&[&huge]), 0);
    check_sprite(&r, &s);
    assert!(visible(&s) > 300);
    let many: Vec<String> = (0..5000).map(|i| format!("w{i}")).collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    check_sprite(&r, &r.render_page(&page(&many_refs), 3));
}

#[test]
fn missing_glyphs_become_boxes() {
    let r = renderer();
    // DejaVu Sans Bold covers a few emoji (😀), but no CJK.
    let emoji = r.render_page(&page(&["日"]), 9);
    // A box is hollow: the middle row crosses the frame twice.
    let y = emoji.height / 2;
    let whites: Vec<u32> = (0..emoji.width)
        .filter(|&x| emoji.pixel(x, y).is_some_and(|p| p == [255, 255, 255, 255]))
        .collect();
    assert!(!whites.is_empty());
    let runs = whites.windows(2).filter(|w| w[1] != w[0] + 1).count() + 1;
    assert_eq!(runs, 2, "{whites:?}");
}

#[test]
fn empty_input_gives_empty_sprites() {
    let r = renderer();
    assert!(r.render_page(&page(&[""]), 0).is_empty());
    assert!(r.render_page(&page(&["\u{200b}", " "]), 0).is_empty());
    assert!(
        r.render_page(
            &Page {
                words: vec![],
                start_ms: 0,
                end_ms: 0
            },
            0
        )
        .is_empty()
    );
    // The card still draws its panel.
    let card = r.render_title_card("", "");
    check_sprite(&r, &card);
    assert!(!card.is_empty());
}

#[test]
fn rtl_page_reads_right_to_left() {
    let r = renderer();
    // The first spoken word (highlighted) is drawn on the right.
    let s = r.render_page(&page(&["שלום", "עולם"]), 0);
    let hi: Vec<u32> = pixels(&s)
        .filter(|p| p.2 == [255, 230, 0, 255])
        .map(|p| p.0)
        .collect();
    let mean = hi.iter().map(|&x| x as f32).sum::<f32>() / hi.len() as f32 / s.width as f32;
    assert!(mean > 0.5, "{mean}");
}

#[test]
fn title_card_layout() {
    let r = renderer();
    let card = r.render_title_card(
        "AITA for labeling all my food after my roommate kept eating it?",
        "r/storyreel",
    );
    check_sprite(&r, &card);
    let safe = r.safe_rect();
    // About 88% of the safe width plus the shadow margin.
    let w = card.width as f32 / safe.width();
    assert!((0.86..0.98).contains(&w), "{w}");
    let mid_y = card.y as f32 + card.height as f32 / 2.0;
    // The drop shadow below the panel shifts the cropped sprite down a little.
    assert!((mid_y - (safe.y0 + safe.y1) / 2.0).abs() < 15.0, "{mid_y}");
    let white = pixels(&card)
        .filter(|p| p.2 == [255, 255, 255, 255])
        .count();
    let dark = pixels(&card).filter(|p| p.2 == [26, 26, 27, 255]).count();
    assert!(
        white > 100_000 && dark > 5_000,
        "white {white}, dark {dark}"
    );

    // A very long title stays within 6 lines: the card never outgrows the safe area.
    let long = "word ".repeat(400);
    let card = r.render_title_card(&long, &"channel".repeat(50));
    check_sprite(&r, &card);
    assert!(card.height < 1000, "{}", card.height);
}

#[test]
fn bad_styles_are_clamped() {
    let style = CaptionStyle {
        frame_width: 0,
        frame_height: u32::MAX,
        font_size: f32::NAN,
        outline_width: -1.0,
        shadow: Some(Shadow {
            color: [0, 0, 0, 255],
            offset: f32::INFINITY,
            blur: 99.0,
        }),
        safe_area: SafeArea {
            left: 0.9,
            right: 0.1,
            top: f32::NAN,
            bottom: -3.0,
        },
        center_y: 7.0,
        ..CaptionStyle::default()
    };
    let r = CaptionRenderer::new(style);
    let s = r.render_page(&page(&["still", "works"]), 0);
    let st = r.style();
    assert!(s.x as u32 + s.width <= st.frame_width && s.y as u32 + s.height <= st.frame_height);
}

#[test]
fn draw_over_blends() {
    let s = Sprite {
        x: 1,
        y: 0,
        width: 1,
        height: 1,
        rgba: vec![128, 0, 0, 128],
    };
    let mut frame = vec![0, 0, 255, 255, 0, 0, 255, 255];
    s.draw_over(&mut frame, 2, 1);
    assert_eq!(frame, [0, 0, 255, 255, 128, 0, 127, 255]);
    // Wrong frame size: nothing happens.
    let mut short = vec![0u8; 4];
    s.draw_over(&mut short, 2, 1);
    assert_eq!(short, [0; 4]);
}

#[test]
#[allow(clippy::single_range_in_vec_init)]
fn fit_lines_prefers_one_line_then_balanced_two() {
    let (lines, s) = fit_lines(&[100.0, 100.0, 100.0], 10.0, 400.0, 5.0, 3);
    assert_eq!((lines, s), (vec![0..3], 1.0));
    let (lines, s) = fit_lines(&[100.0, 100.0, 150.0], 10.0, 300.0, 5.0, 3);
    assert_eq!((lines, s), (vec![0..2, 2..3], 1.0));
    let (lines, s) = fit_lines(&[1000.0], 10.0, 500.0, 0.0, 3);
    assert_eq!(lines, vec![0..1]);
    assert!((s - 0.5).abs() < 1e-6);
}
