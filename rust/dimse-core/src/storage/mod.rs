//! Writing received instances as DICOM files (PS3.10): File Meta Information followed by
//! the data set exactly as it arrived, never decoded.
//!
//! Each file is written under a temporary name in its final folder and renamed into place
//! only when complete, so a reader (or an index rebuilt after a crash) sees either the
//! whole file or nothing; rename within one folder is atomic on POSIX file systems. Any
//! error removes the temporary file. With [`Durability::Fsync`] the file (and its folder,
//! after the rename) is flushed to the device before success is reported, so an
//! acknowledged instance also survives a power loss; without it, it survives the process
//! being killed (the kernel holds the written pages), as with DCMTK's storescp.
//!
//! File names come from UIDs a peer sends: a value that is not a valid UID (PS3.5 9.1:
//! digits and single dots, at most 64 characters) never becomes a path component; a
//! digest of it does, so whatever the peer sends, the file stays inside the folder.

pub mod scan;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::filemeta::FileMeta;

/// Where files go below the output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Layout {
    /// `<dir>/<SOP Instance UID>.dcm`
    #[default]
    Flat,
    /// `<dir>/<Study Instance UID>/<Series Instance UID>/<SOP Instance UID>.dcm`
    Study,
}

/// Whether success waits for the data to reach the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Durability {
    /// Complete and renamed: survives a killed process, not a power loss.
    #[default]
    Rename,
    /// Also fsync the file before the rename and the folder after it.
    Fsync,
}

/// One instance to write.
#[derive(Debug, Clone, Copy)]
pub struct Instance<'a> {
    pub sop_class_uid: &'a str,
    pub sop_instance_uid: &'a str,
    pub transfer_syntax_uid: &'a str,
    /// (0002,0016) Source Application Entity Title: the peer that sent it.
    pub source_ae_title: Option<&'a str>,
    /// The data set, encoded in `transfer_syntax_uid`, in parts as it arrived (written
    /// with one vectored write, never joined).
    pub dataset: &'a [&'a [u8]],
}

/// How much of the start of a data set is joined to look for the Study and Series
/// Instance UIDs (groups 0008-0020 come long before any bulk data).
const SCAN_PREFIX: usize = 256 * 1024;

/// Why an instance was not written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot build the File Meta Information: {0}")]
    Meta(#[from] crate::filemeta::FileMetaError),
    // The cause first: an ErrorComment (64 characters) keeps it whatever the path's length.
    #[error("{source}: {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes instances below one folder.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    layout: Layout,
    durability: Durability,
}

/// Distinguishes the temporary files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The suffix of temporary files; anything carrying it after a crash is incomplete.
pub const TEMP_SUFFIX: &str = ".part";

impl FileStore {
    pub fn new(root: impl Into<PathBuf>, layout: Layout, durability: Durability) -> FileStore {
        FileStore {
            root: root.into(),
            layout,
            durability,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The final path of an instance (without writing anything).
    pub fn path_for(&self, instance: &Instance<'_>) -> PathBuf {
        let mut path = self.root.clone();
        if self.layout == Layout::Study {
            let encoding = scan::Encoding::of_transfer_syntax(instance.transfer_syntax_uid);
            let prefix = join_prefix(instance.dataset, SCAN_PREFIX);
            let found = scan::find_elements(
                &prefix,
                encoding,
                &[STUDY_INSTANCE_UID, SERIES_INSTANCE_UID],
            );
            for value in found {
                match value {
                    Some(v) => path.push(component(&String::from_utf8_lossy(&v))),
                    None => path.push("unknown"),
                }
            }
        }
        path.push(format!("{}.dcm", component(instance.sop_instance_uid)));
        path
    }

    /// Writes the instance and returns its path once the file is complete under its final
    /// name. A file already there (the same SOP Instance UID sent again) is replaced.
    pub fn store(&self, instance: &Instance<'_>) -> Result<PathBuf, StoreError> {
        self.create(instance)?.commit()
    }

    /// Starts writing an instance whose data set arrives in parts: `instance.dataset` is
    /// its start (enough to find the Study/Series UIDs for [`Layout::Study`]); more
    /// follows with [`PartialFile::write`], and [`PartialFile::commit`] puts the file
    /// under its final name. Dropped without a commit, the partial file is removed.
    pub fn create(&self, instance: &Instance<'_>) -> Result<PartialFile, StoreError> {
        let mut meta = FileMeta::new(
            trim_uid(instance.sop_class_uid),
            trim_uid(instance.sop_instance_uid),
            trim_uid(instance.transfer_syntax_uid),
        );
        meta.source_application_entity_title = instance
            .source_ae_title
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let header = meta.encode()?;
        let path = self.path_for(instance);
        let folder = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&folder).map_err(|source| StoreError::Io {
            op: "cannot create folder",
            path: folder.clone(),
            source,
        })?;
        let temp = temp_name(&path);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|source| StoreError::Io {
                op: "cannot create",
                path: temp.clone(),
                source,
            })?;
        let mut partial = PartialFile {
            file,
            temp,
            path,
            folder,
            durability: self.durability,
            committed: false,
        };
        partial.write_parts(&header, instance.dataset)?;
        Ok(partial)
    }
}

/// A file being written under its temporary name (see [`FileStore::create`]).
#[derive(Debug)]
pub struct PartialFile {
    file: File,
    temp: PathBuf,
    path: PathBuf,
    folder: PathBuf,
    durability: Durability,
    committed: bool,
}

impl PartialFile {
    /// The path the file will have once committed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the next parts of the data set.
    pub fn write(&mut self, parts: &[&[u8]]) -> Result<(), StoreError> {
        self.write_parts(&[], parts)
    }

    fn write_parts(&mut self, header: &[u8], parts: &[&[u8]]) -> Result<(), StoreError> {
        write_all_vectored(&mut self.file, header, parts).map_err(|source| StoreError::Io {
            op: "cannot write",
            path: self.temp.clone(),
            source,
        })
    }

    /// Completes the file: flushed to the device with [`Durability::Fsync`], then renamed
    /// to its final name (replacing a file of the same instance). Returns that name.
    pub fn commit(mut self) -> Result<PathBuf, StoreError> {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { op, path, source }
        };
        if self.durability == Durability::Fsync {
            self.file
                .sync_all()
                .map_err(io("cannot sync", &self.temp))?;
        }
        fs::rename(&self.temp, &self.path).map_err(io("cannot rename into", &self.path))?;
        self.committed = true;
        if self.durability == Durability::Fsync {
            // The rename is durable only once the folder's entry is.
            File::open(&self.folder)
                .and_then(|d| d.sync_all())
                .map_err(io("cannot sync folder", &self.folder))?;
        }
        Ok(std::mem::take(&mut self.path))
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// (0020,000D) Study Instance UID and (0020,000E) Series Instance UID.
const STUDY_INSTANCE_UID: u32 = 0x0020_000D;
const SERIES_INSTANCE_UID: u32 = 0x0020_000E;

/// Header and data set parts in as few system calls as the kernel allows, without
/// joining them.
fn write_all_vectored(file: &mut File, header: &[u8], dataset: &[&[u8]]) -> io::Result<()> {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(dataset.len() + 1);
    parts.extend(
        std::iter::once(header)
            .chain(dataset.iter().copied())
            .filter(|p| !p.is_empty()),
    );
    let mut first = 0;
    while first < parts.len() {
        // The kernel takes at most IOV_MAX (1024) slices per call.
        let slices: Vec<io::IoSlice<'_>> = parts[first..]
            .iter()
            .take(1024)
            .map(|p| io::IoSlice::new(p))
            .collect();
        let mut n = file.write_vectored(&slices)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while first < parts.len() && n >= parts[first].len() {
            n -= parts[first].len();
            first += 1;
        }
        if n > 0 {
            parts[first] = &parts[first][n..];
        }
    }
    Ok(())
}

/// The first `n` bytes of the parts, joined (all of them when shorter).
fn join_prefix(parts: &[&[u8]], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n.min(parts.iter().map(|p| p.len()).sum()));
    for p in parts {
        let take = (n - out.len()).min(p.len());
        out.extend_from_slice(&p[..take]);
        if out.len() == n {
            break;
        }
    }
    out
}

fn temp_name(path: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}{TEMP_SUFFIX}", std::process::id()))
}

/// A UID value without its padding (PS3.5 9.1: a trailing NUL; tolerate spaces too).
fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' ']).trim_start_matches(' ')
}

/// Whether `uid` is a valid UID (PS3.5 9.1): 1 to 64 characters, components of digits
/// separated by single dots. (Leading zeros, which 9.1 forbids, are tolerated: harmless in
/// a file name, and some devices send them.)
pub fn is_valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid
            .split('.')
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
}

/// A safe file-name component for a UID from a peer: the UID itself when valid, otherwise
/// `x` and a digest of it (FNV-1a, 64 bits), which names it without trusting it.
pub fn component(uid: &str) -> String {
    let uid = trim_uid(uid);
    if is_valid_uid(uid) {
        return uid.to_owned();
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("x{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance<'a>(uid: &'a str, data: &'a [&'a [u8]]) -> Instance<'a> {
        Instance {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2",
            sop_instance_uid: uid,
            transfer_syntax_uid: "1.2.840.10008.1.2",
            source_ae_title: Some("PEER "),
            dataset: data,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dimse-storage-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn uid_components() {
        assert_eq!(component("1.2.3\0"), "1.2.3");
        for hostile in [
            "../../etc/passwd",
            "1..2",
            ".",
            "",
            "1.2/3",
            "a",
            "1.2.3.",
            &"1".repeat(65),
        ] {
            let c = component(hostile);
            assert!(c.starts_with('x') && c.len() == 17, "{hostile:?} -> {c}");
        }
        assert_ne!(component("../a"), component("../b"));
    }

    #[test]
    fn writes_meta_then_dataset_and_replaces() {
        let dir = temp_dir("write");
        let store = FileStore::new(&dir, Layout::Flat, Durability::Fsync);
        let path = store
            .store(&instance(
                "1.2.3",
                &[b"\x08\x00\x60\x00", b"\x02\x00\x00\x00CT"],
            ))
            .unwrap();
        assert_eq!(path, dir.join("1.2.3.dcm"));
        let bytes = fs::read(&path).unwrap();
        let header = crate::filemeta::parse(&bytes).unwrap();
        assert_eq!(header.meta.media_storage_sop_instance_uid, "1.2.3");
        assert_eq!(
            header.meta.source_application_entity_title.as_deref(),
            Some("PEER")
        );
        assert_eq!(
            &bytes[header.data_offset as usize..],
            b"\x08\x00\x60\x00\x02\x00\x00\x00CT"
        );
        // The same instance again: replaced, and no temporary file left behind.
        store.store(&instance("1.2.3", &[])).unwrap();
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("1.2.3.dcm")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn many_parts_are_written_in_order() {
        // More parts than one vectored write takes (IOV_MAX), of odd sizes.
        let data: Vec<u8> = (0..3000u32)
            .flat_map(|i| vec![i as u8; (i % 7) as usize])
            .collect();
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut at = 0;
        for i in 0..3000usize {
            parts.push(&data[at..at + i % 7]);
            at += i % 7;
        }
        let dir = temp_dir("parts");
        let store = FileStore::new(&dir, Layout::Flat, Durability::Rename);
        let path = store.store(&instance("7.7", &parts)).unwrap();
        let bytes = fs::read(&path).unwrap();
        let header = crate::filemeta::parse(&bytes).unwrap();
        assert_eq!(&bytes[header.data_offset as usize..], &data[..]);
        assert_eq!(join_prefix(&parts, 10), data[..10].to_vec());
        assert_eq!(join_prefix(&parts, usize::MAX), data);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_in_parts_appears_only_when_committed() {
        let dir = temp_dir("partial");
        let store = FileStore::new(&dir, Layout::Flat, Durability::Fsync);
        let mut partial = store.create(&instance("3.3", &[b"ab"])).unwrap();
        partial.write(&[b"cd", b"", b"ef"]).unwrap();
        partial.write(&[]).unwrap();
        let names = || -> Vec<String> {
            fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        assert!(names()[0].ends_with(TEMP_SUFFIX), "{:?}", names());
        let path = partial.commit().unwrap();
        assert_eq!(names(), vec!["3.3.dcm".to_owned()]);
        let bytes = fs::read(&path).unwrap();
        let header = crate::filemeta::parse(&bytes).unwrap();
        assert_eq!(&bytes[header.data_offset as usize..], b"abcdef");
        // Dropped before its commit (the association ended mid-way): nothing is left.
        let partial = store.create(&instance("3.4", &[b"ab"])).unwrap();
        drop(partial);
        assert_eq!(names(), vec!["3.3.dcm".to_owned()]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hostile_uid_stays_inside() {
        let dir = temp_dir("hostile");
        let store = FileStore::new(&dir, Layout::Flat, Durability::Rename);
        // Not digits and dots: refused (the File Meta Information cannot carry it).
        let err = store.store(&instance("../../escape", &[])).unwrap_err();
        assert!(matches!(err, StoreError::Meta(_)), "{err}");
        // Digits and dots but not a valid UID: written under a digest, inside the folder.
        for uid in ["1..2", "..", "1.2.", "00.01"] {
            let path = store.store(&instance(uid, &[])).unwrap();
            assert_eq!(path.parent(), Some(dir.as_path()), "{uid}");
        }
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 4);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn study_layout_from_the_dataset() {
        let dir = temp_dir("study");
        let store = FileStore::new(&dir, Layout::Study, Durability::Rename);
        let mut data = Vec::new();
        for (e, v) in [(0x000Du16, &b"1.2.840.1\0"[..]), (0x000E, b"../..")] {
            data.extend_from_slice(&0x0020u16.to_le_bytes());
            data.extend_from_slice(&e.to_le_bytes());
            data.extend_from_slice(&(v.len() as u32).to_le_bytes());
            data.extend_from_slice(v);
        }
        let path = store
            .store(&instance("5.6", &[&data[..7], &data[7..]]))
            .unwrap();
        let rel = path.strip_prefix(&dir).unwrap();
        let parts: Vec<_> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(parts[0], "1.2.840.1");
        assert!(parts[1].starts_with('x'), "{parts:?}");
        assert_eq!(parts[2], "5.6.dcm");
        // Without the UIDs in the data set: "unknown" folders.
        let path = store.store(&instance("5.7", &[])).unwrap();
        assert_eq!(path, dir.join("unknown").join("unknown").join("5.7.dcm"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_write_leaves_no_file() {
        let dir = temp_dir("fail");
        // The output "folder" is a file: creating the folder fails, nothing is written.
        fs::create_dir_all(dir.parent().unwrap()).unwrap();
        fs::write(&dir, b"not a folder").unwrap();
        let store = FileStore::new(dir.join("sub"), Layout::Flat, Durability::Rename);
        let err = store.store(&instance("1.2", &[])).unwrap_err();
        assert!(err.to_string().contains("cannot create folder"), "{err}");
        fs::remove_file(&dir).unwrap();
    }
}
