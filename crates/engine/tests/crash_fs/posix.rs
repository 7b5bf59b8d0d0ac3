//! A model of a POSIX file system with inodes, fed the engine's recorded calls: it
//! knows what is durable (file data once the file is fsynced, a directory entry once
//! its directory is) and what is pending, and builds the disk a power cut could
//! leave from any subset of the pending changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sundial_engine::vfs::FsEvent;

type Ino = usize;

#[derive(Debug, Clone, Hash)]
enum Node {
    File(Vec<u8>),
    Dir(BTreeMap<String, Ino>),
}

#[derive(Debug, Clone)]
enum Change {
    Write { ino: Ino, off: u64, data: Arc<[u8]> },
    SetLen { ino: Ino, len: u64 },
    Link { dir: Ino, name: String, ino: Ino },
    Unlink { dir: Ino, name: String },
    Rename { dir: Ino, from: String, to: String },
}

impl Change {
    fn data_of(&self) -> Option<Ino> {
        match self {
            Change::Write { ino, .. } | Change::SetLen { ino, .. } => Some(*ino),
            _ => None,
        }
    }
    fn dir_of(&self) -> Option<Ino> {
        match self {
            Change::Link { dir, .. } | Change::Unlink { dir, .. } | Change::Rename { dir, .. } => {
                Some(*dir)
            }
            _ => None,
        }
    }
}

fn apply_change(nodes: &mut [Node], c: &Change) {
    match c {
        Change::Write { ino, off, data } => {
            if let Node::File(b) = &mut nodes[*ino] {
                let (off, end) = (*off as usize, *off as usize + data.len());
                if b.len() < end {
                    b.resize(end, 0);
                }
                b[off..end].copy_from_slice(data);
            }
        }
        Change::SetLen { ino, len } => {
            if let Node::File(b) = &mut nodes[*ino] {
                b.resize(*len as usize, 0);
            }
        }
        Change::Link { dir, name, ino } => {
            if let Node::Dir(e) = &mut nodes[*dir] {
                e.insert(name.clone(), *ino);
            }
        }
        Change::Unlink { dir, name } => {
            if let Node::Dir(e) = &mut nodes[*dir] {
                e.remove(name);
            }
        }
        Change::Rename { dir, from, to } => {
            if let Node::Dir(e) = &mut nodes[*dir] {
                if let Some(ino) = e.remove(from) {
                    e.insert(to.clone(), ino);
                }
            }
        }
    }
}

/// Page size of write-back: unsynced writes reach the disk a page at a time.
const PAGE: u64 = 4096;

pub struct FsModel {
    vol: Vec<Node>,
    dur: Vec<Node>,
    /// Changes not yet durable, in the order they were made.
    pending: Vec<Change>,
    files: HashMap<u64, Ino>,
}

/// A state on disk: path → contents (None: a directory).
pub type Image = BTreeMap<PathBuf, Option<Vec<u8>>>;

impl FsModel {
    /// Changes not yet durable.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn new() -> Self {
        let root = Node::Dir(BTreeMap::new());
        FsModel {
            vol: vec![root.clone()],
            dur: vec![root],
            pending: Vec::new(),
            files: HashMap::new(),
        }
    }

    fn new_node(&mut self, n: Node) -> Ino {
        self.vol.push(n.clone());
        self.dur.push(n);
        self.vol.len() - 1
    }

    fn lookup(&self, path: &Path) -> Option<Ino> {
        let mut ino = 0;
        for c in path.components() {
            let Node::Dir(e) = &self.vol[ino] else {
                return None;
            };
            ino = *e.get(c.as_os_str().to_str()?)?;
        }
        Some(ino)
    }

    fn parent(&self, path: &Path) -> (Ino, String) {
        let dir = path.parent().unwrap_or(Path::new(""));
        let dir = self
            .lookup(dir)
            .unwrap_or_else(|| panic!("no directory for {}", path.display()));
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        (dir, name)
    }

    fn change(&mut self, c: Change) {
        apply_change(&mut self.vol, &c);
        self.pending.push(c);
    }

    fn write(&mut self, ino: Ino, off: u64, data: &[u8]) {
        // Split at page boundaries: each page may or may not be written back.
        let mut at = 0usize;
        while at < data.len() {
            let o = off + at as u64;
            let n = ((PAGE - o % PAGE) as usize).min(data.len() - at);
            self.change(Change::Write {
                ino,
                off: o,
                data: data[at..at + n].into(),
            });
            at += n;
        }
    }

    /// Makes the pending changes that `pick` selects durable, in order.
    fn persist(&mut self, pick: impl Fn(&Change) -> bool) {
        let (now, rest): (Vec<Change>, Vec<Change>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(pick);
        for c in &now {
            apply_change(&mut self.dur, c);
        }
        self.pending = rest;
    }

    fn sync(&mut self, ino: Ino) {
        match self.vol[ino] {
            Node::File(_) => self.persist(|c| c.data_of() == Some(ino)),
            Node::Dir(_) => self.persist(|c| c.dir_of() == Some(ino)),
        }
    }

    pub fn event(&mut self, e: &FsEvent) {
        match e {
            FsEvent::Open {
                file,
                path,
                truncate,
            } => {
                let (dir, name) = self.parent(path);
                let ino = match self.lookup(path) {
                    Some(ino) => {
                        if *truncate {
                            self.change(Change::SetLen { ino, len: 0 });
                        }
                        ino
                    }
                    None => {
                        let ino = self.new_node(Node::File(Vec::new()));
                        self.change(Change::Link { dir, name, ino });
                        ino
                    }
                };
                self.files.insert(*file, ino);
            }
            FsEvent::Write { file, offset, data } => {
                let ino = self.files[file];
                self.write(ino, *offset, data);
            }
            FsEvent::SetLen { file, len } => {
                let ino = self.files[file];
                self.change(Change::SetLen { ino, len: *len });
            }
            FsEvent::Sync { file } => self.sync(self.files[file]),
            FsEvent::SyncPath { path } => {
                let ino = self
                    .lookup(path)
                    .unwrap_or_else(|| panic!("fsync of missing {}", path.display()));
                self.sync(ino);
            }
            FsEvent::CreateDir { path } => {
                let (dir, name) = self.parent(path);
                let ino = self.new_node(Node::Dir(BTreeMap::new()));
                self.change(Change::Link { dir, name, ino });
            }
            FsEvent::Rename { from, to } => {
                let (dir, from) = self.parent(from);
                let (to_dir, to) = self.parent(to);
                assert_eq!(dir, to_dir, "cross-directory renames are not modelled");
                self.change(Change::Rename { dir, from, to });
            }
            FsEvent::RemoveFile { path } | FsEvent::RemoveDir { path } => {
                let (dir, name) = self.parent(path);
                self.change(Change::Unlink { dir, name });
            }
            FsEvent::Mark(_) => {}
        }
    }

    /// Pending changes that can still matter: data of nodes no durable or pending
    /// entry can reach again (files written and removed before any fsync) is dropped,
    /// which keeps the subsets few.
    pub fn prune(&mut self) {
        let mut linked: HashSet<Ino> = HashSet::from([0]);
        for n in &self.dur {
            if let Node::Dir(e) = n {
                linked.extend(e.values());
            }
        }
        for c in &self.pending {
            if let Change::Link { ino, .. } = c {
                linked.insert(*ino);
            }
        }
        self.pending
            .retain(|c| c.data_of().is_none_or(|i| linked.contains(&i)));
    }

    /// The disk after a power cut that kept the pending changes `keep` selects.
    pub fn crash_image(&self, keep: &[bool]) -> Image {
        let mut nodes = self.dur.clone();
        for (c, k) in self.pending.iter().zip(keep) {
            if *k {
                apply_change(&mut nodes, c);
            }
        }
        let mut out = Image::new();
        let mut stack = vec![(PathBuf::new(), 0)];
        while let Some((path, ino)) = stack.pop() {
            match &nodes[ino] {
                Node::File(b) => {
                    out.insert(path, Some(b.clone()));
                }
                Node::Dir(e) => {
                    if ino != 0 {
                        out.insert(path.clone(), None);
                    }
                    for (name, child) in e {
                        stack.push((path.join(name), *child));
                    }
                }
            }
        }
        out
    }
}
