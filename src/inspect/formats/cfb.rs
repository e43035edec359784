//! OLE compound files (MS-CFB), the container of legacy Office documents and
//! of encrypted Office Open XML. Only reading is needed: the directory (to
//! see which streams exist) and a few small streams (to see whether the
//! document is encrypted). Every sector chain is followed at most as many
//! steps as the file has sectors, so a looped chain cannot hang the walk.

const FREE: u32 = 0xFFFF_FFFF;
const END_OF_CHAIN: u32 = 0xFFFF_FFFE;

/// An opened compound file.
pub(in crate::inspect) struct Cfb<'b> {
    data: &'b [u8],
    sector_size: usize,
    mini_cutoff: u64,
    fat: Vec<u32>,
    mini_fat: Vec<u32>,
    mini_stream: Vec<u8>,
    pub entries: Vec<DirEntry>,
}

/// A directory entry (storage or stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::inspect) struct DirEntry {
    pub name: String,
    /// 1 storage, 2 stream, 5 root.
    pub kind: u8,
    pub start: u32,
    pub size: u64,
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(d.get(at..at + 8)?.try_into().ok()?))
}

impl<'b> Cfb<'b> {
    pub fn open(data: &'b [u8]) -> Option<Cfb<'b>> {
        if !data.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") || data.len() < 512 {
            return None;
        }
        let shift = u16_at(data, 0x1e)?;
        if shift != 9 && shift != 12 {
            return None;
        }
        let sector_size = 1usize << shift;
        let sectors = data.len() / sector_size;
        let fat_count = u32_at(data, 0x2c)? as usize;
        let first_dir = u32_at(data, 0x30)?;
        let mini_cutoff = u64::from(u32_at(data, 0x38)?);
        let first_mini_fat = u32_at(data, 0x3c)?;
        let first_difat = u32_at(data, 0x44)?;

        // FAT sector numbers: 109 in the header, the rest in DIFAT sectors.
        let mut fat_sectors = Vec::new();
        for i in 0..109 {
            let s = u32_at(data, 0x4c + i * 4)?;
            if s != FREE && s != END_OF_CHAIN {
                fat_sectors.push(s);
            }
        }
        let mut difat = first_difat;
        let mut steps = 0;
        while difat != END_OF_CHAIN && difat != FREE && steps <= sectors && fat_sectors.len() < fat_count {
            let base = Self::offset(difat, sector_size)?;
            let per = sector_size / 4 - 1;
            for i in 0..per {
                let s = u32_at(data, base + i * 4)?;
                if s != FREE && s != END_OF_CHAIN {
                    fat_sectors.push(s);
                }
            }
            difat = u32_at(data, base + per * 4)?;
            steps += 1;
        }
        fat_sectors.truncate(fat_count.min(sectors));
        let mut fat = Vec::with_capacity(fat_sectors.len() * sector_size / 4);
        for s in fat_sectors {
            let base = Self::offset(s, sector_size)?;
            let sector = data.get(base..base + sector_size)?;
            fat.extend(sector.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        }
        let mut cfb = Cfb {
            data,
            sector_size,
            mini_cutoff,
            fat,
            mini_fat: Vec::new(),
            mini_stream: Vec::new(),
            entries: Vec::new(),
        };
        let dir = cfb.chain(first_dir, usize::MAX);
        for raw in dir.chunks_exact(128) {
            let name_len = usize::from(u16_at(raw, 64)?).min(64);
            let units: Vec<u16> = raw[..name_len]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            let mut size = u64_at(raw, 120)?;
            if sector_size == 512 {
                size &= 0xFFFF_FFFF;
            }
            cfb.entries.push(DirEntry {
                name: String::from_utf16_lossy(&units),
                kind: raw[66],
                start: u32_at(raw, 116)?,
                size,
            });
        }
        if let Some(root) = cfb.entries.first().cloned() {
            let mini_fat = cfb.chain(first_mini_fat, usize::MAX);
            cfb.mini_fat =
                mini_fat.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let mini_len = usize::try_from(root.size).unwrap_or(usize::MAX);
            cfb.mini_stream = cfb.chain(root.start, mini_len);
        }
        Some(cfb)
    }

    fn offset(sector: u32, sector_size: usize) -> Option<usize> {
        (sector as usize).checked_add(1)?.checked_mul(sector_size)
    }

    /// Bytes of the regular sector chain from `start`, at most `limit`. Linear: at most one
    /// step per sector of the file (a looping chain stops there), each copying one sector.
    fn chain(&self, start: u32, limit: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut sector = start;
        let max_steps = self.fat.len().min(self.data.len() / self.sector_size);
        for _ in 0..max_steps {
            if sector == END_OF_CHAIN || sector == FREE || out.len() >= limit {
                break;
            }
            let Some(base) = Self::offset(sector, self.sector_size) else {
                break;
            };
            let Some(bytes) = self.data.get(base..base + self.sector_size) else {
                break;
            };
            out.extend_from_slice(bytes);
            match self.fat.get(sector as usize) {
                Some(&next) => sector = next,
                None => break,
            }
        }
        out.truncate(limit);
        out
    }

    /// Bytes of the mini-stream chain from `start`, at most `limit`.
    fn mini_chain(&self, start: u32, limit: usize) -> Vec<u8> {
        const MINI: usize = 64;
        let mut out = Vec::new();
        let mut sector = start;
        for _ in 0..=self.mini_fat.len() {
            if sector == END_OF_CHAIN || sector == FREE || out.len() >= limit {
                break;
            }
            let base = sector as usize * MINI;
            let Some(bytes) = self.mini_stream.get(base..base + MINI) else {
                break;
            };
            out.extend_from_slice(bytes);
            match self.mini_fat.get(sector as usize) {
                Some(&next) => sector = next,
                None => break,
            }
        }
        out.truncate(limit);
        out
    }

    /// The stream named `name` (case-insensitive), at most `limit` bytes.
    pub fn stream(&self, name: &str, limit: usize) -> Option<Vec<u8>> {
        let entry = self.entries.iter().find(|e| e.kind == 2 && e.name.eq_ignore_ascii_case(name))?;
        let len = usize::try_from(entry.size).unwrap_or(usize::MAX).min(limit);
        Some(if entry.size < self.mini_cutoff {
            self.mini_chain(entry.start, len)
        } else {
            self.chain(entry.start, len)
        })
    }

    pub fn has_stream(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.kind == 2 && e.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
pub(in crate::inspect) mod testcfb {
    //! Builds small compound files (512-byte sectors, everything in regular
    //! sectors by setting the mini-stream cutoff to zero) for tests.

    pub fn build(streams: &[(&str, &[u8])]) -> Vec<u8> {
        const S: usize = 512;
        let mut sectors: Vec<Vec<u8>> = Vec::new();
        let mut fat: Vec<u32> = Vec::new();
        let mut starts = Vec::new();
        for (_, data) in streams {
            let n = data.len().div_ceil(S).max(1);
            let first = sectors.len() as u32;
            for i in 0..n {
                let mut sector = vec![0u8; S];
                let chunk = &data[(i * S).min(data.len())..((i + 1) * S).min(data.len())];
                sector[..chunk.len()].copy_from_slice(chunk);
                sectors.push(sector);
                fat.push(if i + 1 == n { 0xFFFF_FFFE } else { first + i as u32 + 1 });
            }
            starts.push(first);
        }
        // Directory: root + one entry per stream, flat (siblings unused).
        let dir_first = sectors.len() as u32;
        let mut dir = Vec::new();
        let entry = |name: &str, kind: u8, start: u32, size: u64| {
            let mut e = vec![0u8; 128];
            let units: Vec<u8> = name.encode_utf16().chain([0]).flat_map(|u| u.to_le_bytes()).collect();
            e[..units.len()].copy_from_slice(&units);
            e[64..66].copy_from_slice(&(units.len() as u16).to_le_bytes());
            e[66] = kind;
            e[68..80].copy_from_slice(&[0xff; 12]);
            e[116..120].copy_from_slice(&start.to_le_bytes());
            e[120..128].copy_from_slice(&size.to_le_bytes());
            e
        };
        dir.extend(entry("Root Entry", 5, 0xFFFF_FFFE, 0));
        for ((name, data), start) in streams.iter().zip(&starts) {
            dir.extend(entry(name, 2, *start, data.len() as u64));
        }
        let dir_sectors = dir.len().div_ceil(S);
        dir.resize(dir_sectors * S, 0);
        for i in 0..dir_sectors {
            sectors.push(dir[i * S..(i + 1) * S].to_vec());
            fat.push(if i + 1 == dir_sectors { 0xFFFF_FFFE } else { dir_first + i as u32 + 1 });
        }
        let fat_sector = sectors.len() as u32;
        fat.push(0xFFFF_FFFD);
        let mut fat_bytes: Vec<u8> = fat.iter().flat_map(|f| f.to_le_bytes()).collect();
        fat_bytes.resize(S, 0xff);
        sectors.push(fat_bytes);

        let mut header = vec![0u8; S];
        header[..8].copy_from_slice(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1");
        header[0x18..0x1a].copy_from_slice(&0x3eu16.to_le_bytes());
        header[0x1a..0x1c].copy_from_slice(&3u16.to_le_bytes());
        header[0x1c..0x1e].copy_from_slice(&0xfffeu16.to_le_bytes());
        header[0x1e..0x20].copy_from_slice(&9u16.to_le_bytes());
        header[0x20..0x22].copy_from_slice(&6u16.to_le_bytes());
        header[0x2c..0x30].copy_from_slice(&1u32.to_le_bytes());
        header[0x30..0x34].copy_from_slice(&dir_first.to_le_bytes());
        header[0x38..0x3c].copy_from_slice(&0u32.to_le_bytes());
        header[0x3c..0x40].copy_from_slice(&0xFFFF_FFFEu32.to_le_bytes());
        header[0x44..0x48].copy_from_slice(&0xFFFF_FFFEu32.to_le_bytes());
        for i in 0..109 {
            header[0x4c + i * 4..0x50 + i * 4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        }
        header[0x4c..0x50].copy_from_slice(&fat_sector.to_le_bytes());
        let mut out = header;
        for s in sectors {
            out.extend(s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_listed_and_read() {
        let big = vec![7u8; 1500];
        let file = testcfb::build(&[("WordDocument", b"\xec\xa5abc"), ("Data", &big)]);
        let cfb = Cfb::open(&file).unwrap();
        assert!(cfb.has_stream("worddocument"));
        assert_eq!(cfb.stream("WordDocument", 100).unwrap(), b"\xec\xa5abc");
        assert_eq!(cfb.stream("Data", 10_000).unwrap(), big);
        assert_eq!(cfb.stream("Data", 10).unwrap().len(), 10);
    }

    #[test]
    fn looped_chain_terminates() {
        let mut file = testcfb::build(&[("Data", &[1u8; 1024])]);
        // Point the second sector of the stream back at the first.
        let fat_at = 512 + 3 * 512;
        file[fat_at + 4..fat_at + 8].copy_from_slice(&0u32.to_le_bytes());
        let cfb = Cfb::open(&file).unwrap();
        assert!(cfb.chain(0, usize::MAX).len() <= file.len());
    }

    #[test]
    fn not_a_compound_file() {
        assert!(Cfb::open(b"PK\x03\x04").is_none());
        let mut bad = testcfb::build(&[]);
        bad[0x1e] = 30;
        assert!(Cfb::open(&bad).is_none());
    }
}
