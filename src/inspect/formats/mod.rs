//! Container and encryption formats, each on its own and each linear in its input: ZIP,
//! compound files and Office encryption, PDF encryption, S/MIME and PGP recognition, file-type
//! sniffing, RC4. Bytes in, facts out; no walk state (the walk calls them).

pub(in crate::inspect) mod cfb;
pub(in crate::inspect) mod office;
pub(in crate::inspect) mod pdf;
pub(in crate::inspect) mod pgp;
pub(in crate::inspect) mod rc4;
pub(in crate::inspect) mod smime;
pub(in crate::inspect) mod sniff;
pub(in crate::inspect) mod zip;
