//! QR images of tokens and connector codes: the `qrcode` crate encodes, its SVG renderer draws
//! SVG, and PNG is drawn here module by module and written by the `png` crate (no `image`).

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module in the PNG.
const PNG_SCALE: usize = 8;
/// White border, in modules, that scanners need around the code.
const QUIET_ZONE: usize = 4;

/// Why an image could not be made (only for data no token is: too long for any QR version).
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("cannot encode as a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("cannot write the PNG: {0}")]
    Png(#[from] png::EncodingError),
}

// Medium error correction: tokens are short, and a phone screen or a printed sticker may be
// scuffed or glared.
fn encode(data: &str) -> Result<QrCode, QrError> {
    Ok(QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)?)
}

/// `data` as an SVG document.
pub fn svg(data: &str) -> Result<String, QrError> {
    let code = encode(data)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

/// `data` as an 8-bit greyscale PNG.
pub fn png(data: &str) -> Result<Vec<u8>, QrError> {
    let code = encode(data)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * PNG_SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
        for y in my * PNG_SCALE..(my + 1) * PNG_SCALE {
            let row = y * side;
            pixels[row + mx * PNG_SCALE..row + (mx + 1) * PNG_SCALE].fill(0);
        }
    }
    let side32 = u32::try_from(side).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side32, side32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn svg_and_png_of_a_token() {
        let token = "CK1.local.42.1900000000.AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
        let svg = super::svg(token).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg:.80}");
        let png = super::png(token).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // Decode it back: square, greyscale, black and white only, with a white quiet zone.
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.width, info.height);
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert!(buf.iter().all(|&p| p == 0 || p == 255));
        assert!(buf[..info.width as usize * super::QUIET_ZONE * super::PNG_SCALE]
            .iter()
            .all(|&p| p == 255));
        assert!(buf.contains(&0));
    }

    #[test]
    fn data_too_long_for_any_qr_code_is_an_error() {
        assert!(super::svg(&"x".repeat(5_000)).is_err());
        assert!(super::png(&"x".repeat(5_000)).is_err());
    }
}
