use std::time::Instant;
use storyreel::background::Background;
use storyreel::frame::Frame;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let n: u64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(300);
    let mut bg = Background::open_file(std::path::Path::new(&path), 1000).unwrap();
    let mut f = Frame::black(1080, 1920);
    let t = Instant::now();
    for i in 0..n {
        bg.draw(i, 30, &mut f).unwrap();
    }
    let el = t.elapsed();
    eprintln!("draw: {:.2} ms/frame", el.as_secs_f64() * 1000.0 / n as f64);
    let mut s = storyreel::scale::Scaler::new(1920, 1080, 1080, 1920);
    let src = Frame::black(1920, 1080);
    let t = Instant::now();
    for _ in 0..n {
        s.scale([&src.y, &src.u, &src.v], [1920, 960, 960], &mut f);
    }
    eprintln!(
        "scale: {:.2} ms/frame",
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
    let g = f.clone();
    let t = Instant::now();
    for _ in 0..n {
        f.copy_from(&g);
    }
    eprintln!(
        "copy: {:.2} ms/frame",
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
}
