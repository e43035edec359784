//! Text handling: transfer and charset decoding, HTML to visible text and links, URLs in
//! text. Pure functions over bytes and strings.

pub(in crate::inspect) mod decode;
pub(in crate::inspect) mod html;
pub(in crate::inspect) mod urls;
