//! Rust reference resolver for `benches/imports.rs` (`rust=PATH`): module-level edges of a Cargo
//! workspace, from Cargo's own view of the packages and a real Rust parser.
//!
//! - Packages, targets and dependencies come from `cargo metadata --no-deps --offline` (run at
//!   the top, and again for every tracked Cargo.toml outside that workspace): each target's root
//!   file (`src_path`) is a crate; its extern prelude is the package's dependencies (normal and
//!   dev; build dependencies for build scripts only) under their `rename` or their library name,
//!   the package's own library for its other targets, and `extern crate` items. A dependency is
//!   in the repository when its `path` is a package of the repository; any other is external.
//! - Each crate's module tree is built with `syn` from its root file, following `mod x;` (as
//!   `x.rs` or `x/mod.rs`, with `#[path]` attributes, inside inline `mod x { }` blocks too), as
//!   rustc does. `#[cfg]` is ignored: the graph is the union over all configurations.
//! - Names are resolved as rustc's import resolution does, to a fixpoint: items (types, values,
//!   macros; `#[macro_export]` macros at the crate root), `use` items (named, renamed, globs,
//!   with visibility: a glob imports what is visible from the importing module; explicit names
//!   shadow glob ones), across crates of the repository.
//!
//! Edge `a → b` (files, both tracked, `a != b`) when a module of file `a`:
//! - declares `mod x;` whose file is `b`;
//! - has a `use` tree (at module level or in a block) one of whose leaves names an item defined
//!   in `b`, or a module whose file is `b` (a glob names the module it reads from), or an
//!   `extern crate x` item whose crate root is `b`;
//! - has a path of two or more segments in code (types, expressions, patterns, macro paths, and
//!   paths in macro arguments and `macro_rules!` bodies, read as tokens, `$crate` as `crate`) that
//!   starts with `crate`, `self`, `super`, `::` or a name of the crate's extern prelude, and
//!   names an item defined in `b` or a module whose file is `b`.
//!
//! "Defined in" follows re-exports to the definition: `grep_searcher::Sink` is in `sink.rs`, not
//! in the `lib.rs` that re-exports it. A path continuing past a non-module item (an enum's
//! variant, an associated item) names that item. A name that cannot be found in a module of the
//! repository (an item made by a macro, a `#[cfg]`d-out alternative) stands for that module's
//! file: rustc would find it there after expansion. Such names are counted on stderr.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::visit::Visit;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Ns {
    Type,
    Value,
    Macro,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Res {
    Module(usize),
    /// A non-module item: the file it is defined in, and an enum's variants.
    Item(Rc<str>, Rc<[String]>),
    /// Outside the repository (std, registry crates).
    External,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Vis {
    Public,
    /// Visible in this module and its descendants.
    In(usize),
}

#[derive(Debug)]
enum ImportKind {
    /// Binding name (`_` binds nothing); `use a::{self}` binds the type namespace only.
    Single(String, bool),
    Glob,
}

#[derive(Debug)]
struct Import {
    vis: Vis,
    /// Under `#[cfg]` (or made by a macro): it does not shadow glob imports of the same name.
    cfg: bool,
    path: Vec<String>,
    kind: ImportKind,
}

type Table = HashMap<(String, Ns), Vec<(Res, Vis)>>;

#[derive(Default)]
struct Module {
    /// Repository-relative file holding the module's items ("" when the file is missing).
    file: Rc<str>,
    parent: Option<usize>,
    root: usize,
    krate: usize,
    explicit: Table,
    globbed: Table,
    /// Names with a `#[cfg]`d explicit binding: glob bindings still show through.
    conditional: HashSet<(String, Ns)>,
    imports: Vec<Import>,
    /// `use` leaves inside blocks: resolved for edges only.
    block_uses: Vec<Vec<String>>,
    /// Multi-segment paths in code, with the namespace their position asks for (a call's path is
    /// a value, a type's a type, a macro's or an attribute's a macro; any in macro tokens).
    paths: Vec<(Vec<String>, Option<Ns>)>,
    /// A glob import reads from outside the repository: a name missing here may come from it.
    opaque: bool,
}

struct Crate {
    extern_prelude: HashMap<String, Res>,
}

struct World {
    repo: PathBuf,
    tracked: HashSet<String>,
    modules: Vec<Module>,
    crates: Vec<Crate>,
    parsed: HashMap<PathBuf, Option<Rc<syn::File>>>,
    edges: BTreeSet<(String, String)>,
    pending_extern_crates: Vec<(usize, String, String, Vis)>,
    parse_errors: Vec<String>,
    /// Whether the item being loaded is under `#[cfg]` or made by a macro.
    cfg: bool,
}

struct Ctx {
    file_dir: PathBuf,
    child_dir: PathBuf,
    inline: bool,
    depth: usize,
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

fn has_attr(attrs: &[syn::Attribute], name: &str) -> bool {
    attrs.iter().any(|a| a.path().is_ident(name))
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// A `use` leaf: its path, and the name it binds with whether only as a module (`a::{self}`);
/// `None` for a glob.
type UseLeaf = (Vec<String>, Option<(String, bool)>);

/// `use` tree leaves. A leading `::` is kept as a `::` segment.
fn flatten(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<UseLeaf>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.unraw().to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) if n.ident == "self" => {
            out.push((prefix.clone(), Some((prefix.last().cloned().unwrap_or_default(), true))))
        }
        syn::UseTree::Name(n) => {
            let mut p = prefix.clone();
            p.push(n.ident.unraw().to_string());
            out.push((p, Some((n.ident.unraw().to_string(), false))));
        }
        syn::UseTree::Rename(r) if r.ident == "self" => {
            out.push((prefix.clone(), Some((r.rename.unraw().to_string(), true))))
        }
        syn::UseTree::Rename(r) => {
            let mut p = prefix.clone();
            p.push(r.ident.unraw().to_string());
            out.push((p, Some((r.rename.unraw().to_string(), false))));
        }
        syn::UseTree::Glob(_) => out.push((prefix.clone(), None)),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten(t, prefix, out);
            }
        }
    }
}

fn use_leaves(u: &syn::ItemUse) -> Vec<UseLeaf> {
    let mut prefix = Vec::new();
    if u.leading_colon.is_some() {
        prefix.push("::".to_string());
    }
    let mut out = Vec::new();
    flatten(&u.tree, &mut prefix, &mut out);
    out
}

/// Paths (`a::b`, `::a::b`, `$crate::a`) in a macro's tokens, read without expanding it.
fn scan_tokens(ts: TokenStream, out: &mut Vec<(Vec<String>, Option<Ns>)>) {
    let toks: Vec<TokenTree> = ts.into_iter().collect();
    let is_colon2 = |i: usize| {
        matches!((toks.get(i), toks.get(i + 1)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':')
    };
    let mut i = 0;
    while i < toks.len() {
        if let TokenTree::Group(g) = &toks[i] {
            scan_tokens(g.stream(), out);
            i += 1;
            continue;
        }
        let mut segs = Vec::new();
        let mut j = i;
        if is_colon2(j) {
            segs.push("::".to_string());
            j += 2;
        } else if matches!(&toks[j], TokenTree::Punct(p) if p.as_char() == '$')
            && matches!(toks.get(j + 1), Some(TokenTree::Ident(id)) if id == "crate")
        {
            segs.push("crate".to_string());
            j += 2;
            if !is_colon2(j) {
                i = j;
                continue;
            }
            j += 2;
        } else if matches!(&toks[j], TokenTree::Punct(p) if p.as_char() == '$' || p.as_char() == '#')
            && matches!(toks.get(j + 1), Some(TokenTree::Ident(_)))
        {
            // A metavariable (`$x`) or a `quote!` interpolation (`#x`): what follows it is a
            // path of its own (`#x ::tracing::f()`).
            i = j + 2;
            continue;
        }
        while let Some(TokenTree::Ident(id)) = toks.get(j) {
            segs.push(id.unraw().to_string());
            j += 1;
            if !(is_colon2(j) && matches!(toks.get(j + 2), Some(TokenTree::Ident(_)))) {
                break;
            }
            j += 2;
        }
        let real = segs.iter().filter(|s| *s != "::").count();
        if real >= 2 {
            // `a::f(…)` is a call, `a::m!` a macro.
            let ns = match toks.get(j) {
                Some(TokenTree::Group(g)) if g.delimiter() == proc_macro2::Delimiter::Parenthesis => Some(Ns::Value),
                Some(TokenTree::Punct(p)) if p.as_char() == '!' && p.spacing() == Spacing::Alone => Some(Ns::Macro),
                _ => None,
            };
            out.push((segs, ns));
        }
        i = j.max(i + 1);
    }
}

/// The items a macro's body is made of: the whole body, or else its `{ }` groups (as in
/// `cfg_if!`), when they parse as items with at least one module, `use` or definition.
fn item_groups(ts: TokenStream) -> Vec<Vec<syn::Item>> {
    let items = |ts: TokenStream| syn::parse2::<syn::File>(ts).ok().map(|f| f.items).filter(|i| !i.is_empty());
    if let Some(i) = items(ts.clone()) {
        return vec![i];
    }
    ts.into_iter()
        .filter_map(|t| match t {
            TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace => items(g.stream()),
            _ => None,
        })
        .collect()
}

/// Paths in code and `use` items in blocks, for one module-level item.
struct Collector<'a> {
    paths: &'a mut Vec<(Vec<String>, Option<Ns>)>,
    block_uses: &'a mut Vec<Vec<String>>,
    /// Names of items declared in the blocks around: they shadow crates of the same name.
    shadow: Vec<String>,
}

impl Collector<'_> {
    fn shadowed(&self, p: &[String]) -> bool {
        p.first().is_some_and(|f| self.shadow.contains(f))
    }

    fn push(&mut self, p: &syn::Path, ns: Option<Ns>) {
        if p.segments.len() >= 2 && !self.shadow.contains(&p.segments[0].ident.unraw().to_string()) {
            let mut segs: Vec<String> = Vec::new();
            if p.leading_colon.is_some() {
                segs.push("::".into());
            }
            segs.extend(p.segments.iter().map(|s| s.ident.unraw().to_string()));
            self.paths.push((segs, ns));
        }
        for seg in &p.segments {
            self.visit_path_arguments(&seg.arguments);
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_block(&mut self, b: &'ast syn::Block) {
        let before = self.shadow.len();
        for stmt in &b.stmts {
            if let syn::Stmt::Item(item) = stmt {
                let name = match item {
                    syn::Item::Mod(i) => Some(&i.ident),
                    syn::Item::Struct(i) => Some(&i.ident),
                    syn::Item::Enum(i) => Some(&i.ident),
                    syn::Item::Trait(i) => Some(&i.ident),
                    syn::Item::Type(i) => Some(&i.ident),
                    syn::Item::Union(i) => Some(&i.ident),
                    _ => None,
                };
                self.shadow.extend(name.map(|n| n.unraw().to_string()));
            }
        }
        syn::visit::visit_block(self, b);
        self.shadow.truncate(before);
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.push(p, None);
    }
    fn visit_expr_path(&mut self, e: &'ast syn::ExprPath) {
        if let Some(q) = &e.qself {
            self.visit_qself(q);
        }
        self.push(&e.path, if e.qself.is_none() { Some(Ns::Value) } else { None });
    }
    fn visit_type_path(&mut self, t: &'ast syn::TypePath) {
        if let Some(q) = &t.qself {
            self.visit_qself(q);
        }
        self.push(&t.path, if t.qself.is_none() { Some(Ns::Type) } else { None });
    }
    fn visit_expr_struct(&mut self, e: &'ast syn::ExprStruct) {
        self.push(&e.path, Some(Ns::Type));
        for f in &e.fields {
            self.visit_field_value(f);
        }
        if let Some(r) = &e.rest {
            self.visit_expr(r);
        }
    }
    fn visit_pat_tuple_struct(&mut self, p: &'ast syn::PatTupleStruct) {
        self.push(&p.path, Some(Ns::Value));
        for e in &p.elems {
            self.visit_pat(e);
        }
    }
    fn visit_pat_struct(&mut self, p: &'ast syn::PatStruct) {
        self.push(&p.path, Some(Ns::Type));
        for f in &p.fields {
            self.visit_field_pat(f);
        }
    }
    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        self.push(a.path(), Some(Ns::Macro));
    }
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let leaves: Vec<Vec<String>> =
            use_leaves(u).into_iter().map(|(p, _)| p).filter(|p| !self.shadowed(p)).collect();
        self.block_uses.extend(leaves);
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.push(&m.path, Some(Ns::Macro));
        let mut found = Vec::new();
        scan_tokens(m.tokens.clone(), &mut found);
        found.retain(|(p, _)| !self.shadowed(p));
        self.paths.extend(found);
    }
}

impl World {
    fn rel(&self, p: &Path) -> Option<String> {
        let r = normalize(p).strip_prefix(&self.repo).ok()?.to_string_lossy().replace('\\', "/");
        Some(r)
    }

    fn parse(&mut self, p: &Path) -> Option<Rc<syn::File>> {
        let p = normalize(p);
        if let Some(f) = self.parsed.get(&p) {
            return f.clone();
        }
        let f = std::fs::read_to_string(&p).ok().and_then(|t| match syn::parse_file(&t) {
            Ok(f) => Some(Rc::new(f)),
            Err(e) => {
                self.parse_errors.push(format!("{}: {e}", p.display()));
                None
            }
        });
        self.parsed.insert(p, f.clone());
        f
    }

    fn new_module(&mut self, file: Rc<str>, parent: Option<usize>, root: Option<usize>, krate: usize) -> usize {
        let id = self.modules.len();
        self.modules.push(Module { file, parent, root: root.unwrap_or(id), krate, ..Default::default() });
        id
    }

    fn vis(&self, m: usize, v: &syn::Visibility) -> Vis {
        match v {
            syn::Visibility::Public(_) => Vis::Public,
            syn::Visibility::Inherited => Vis::In(m),
            syn::Visibility::Restricted(r) => {
                if r.path.is_ident("self") {
                    Vis::In(m)
                } else if r.path.is_ident("super") {
                    Vis::In(self.modules[m].parent.unwrap_or(m))
                } else {
                    // `pub(crate)`, `pub(in path)`: the whole crate is near enough.
                    Vis::In(self.modules[m].root)
                }
            }
        }
    }

    fn define(&mut self, m: usize, name: String, ns: Ns, res: Res, vis: Vis) {
        if self.cfg {
            self.modules[m].conditional.insert((name.clone(), ns));
        }
        let slot = self.modules[m].explicit.entry((name, ns)).or_default();
        if !slot.iter().any(|(r, _)| *r == res) {
            slot.push((res, vis));
        }
    }

    /// A crate rooted at `root_file` (absolute).
    fn load_crate(&mut self, root_file: &Path, krate: usize) -> Option<usize> {
        let rel = self.rel(root_file)?;
        let file = self.parse(root_file)?;
        let root = self.new_module(rel.into(), None, None, krate);
        let dir = root_file.parent()?.to_path_buf();
        let ctx = Ctx { file_dir: dir.clone(), child_dir: dir, inline: false, depth: 0 };
        self.load_items(root, &file.items, &ctx, false);
        Some(root)
    }

    fn load_items(&mut self, m: usize, items: &[syn::Item], ctx: &Ctx, expanded: bool) {
        let file: Rc<str> = self.modules[m].file.clone();
        let root = self.modules[m].root;
        let krate = self.modules[m].krate;
        let item_res = || Res::Item(file.clone(), Rc::from(Vec::new()));
        let mut paths = Vec::new();
        let mut block_uses = Vec::new();
        for item in items {
            self.cfg = expanded || item_attrs(item).iter().any(|a| a.path().is_ident("cfg"));
            let mut collect = |item: &syn::Item| {
                let mut c = Collector { paths: &mut paths, block_uses: &mut block_uses, shadow: Vec::new() };
                c.visit_item(item);
            };
            match item {
                syn::Item::Mod(it) => {
                    let vis = self.vis(m, &it.vis);
                    let name = it.ident.unraw().to_string();
                    let explicit_path = path_attr(&it.attrs);
                    match &it.content {
                        Some((_, inner)) => {
                            let child = self.new_module(file.clone(), Some(m), Some(root), krate);
                            self.define(m, name.clone(), Ns::Type, Res::Module(child), vis);
                            let dir = ctx.child_dir.join(explicit_path.as_deref().unwrap_or(&name));
                            let c =
                                Ctx { file_dir: ctx.file_dir.clone(), child_dir: dir, inline: true, depth: ctx.depth };
                            self.load_items(child, inner, &c, false);
                        }
                        None => {
                            let (path, c) = match explicit_path {
                                Some(p) => {
                                    let f = normalize(&if ctx.inline {
                                        ctx.child_dir.join(p)
                                    } else {
                                        ctx.file_dir.join(p)
                                    });
                                    // A `#[path]` file is treated as a mod.rs file: its children are its siblings.
                                    let d = f.parent().unwrap_or(Path::new("")).to_path_buf();
                                    (f, Ctx { file_dir: d.clone(), child_dir: d, inline: false, depth: ctx.depth + 1 })
                                }
                                None => {
                                    let a = ctx.child_dir.join(format!("{name}.rs"));
                                    let f = if a.exists() { a } else { ctx.child_dir.join(&name).join("mod.rs") };
                                    let d = f.parent().unwrap_or(Path::new("")).to_path_buf();
                                    let child_dir = ctx.child_dir.join(&name);
                                    (f, Ctx { file_dir: d, child_dir, inline: false, depth: ctx.depth + 1 })
                                }
                            };
                            let rel = self.rel(&path).filter(|r| self.tracked.contains(r));
                            let parsed = if rel.is_some() && c.depth < 64 { self.parse(&path) } else { None };
                            let child_file: Rc<str> = match (&rel, &parsed) {
                                (Some(r), Some(_)) => r.as_str().into(),
                                _ => "".into(),
                            };
                            let child = self.new_module(child_file, Some(m), Some(root), krate);
                            self.define(m, name, Ns::Type, Res::Module(child), vis);
                            if let Some(r) = rel {
                                self.edges.insert((file.to_string(), r));
                            }
                            if let Some(parsed) = parsed {
                                self.load_items(child, &parsed.items, &c, false);
                            }
                        }
                    }
                }
                syn::Item::Use(u) => {
                    let vis = self.vis(m, &u.vis);
                    for (path, kind) in use_leaves(u) {
                        let kind = match kind {
                            Some((name, self_only)) => ImportKind::Single(name, self_only),
                            None => ImportKind::Glob,
                        };
                        let cfg = self.cfg;
                        self.modules[m].imports.push(Import { vis, cfg, path, kind });
                    }
                }
                syn::Item::Macro(mac) => {
                    match &mac.ident {
                        Some(name) => {
                            if has_attr(&mac.attrs, "macro_export") {
                                self.define(root, name.to_string(), Ns::Macro, item_res(), Vis::Public);
                            }
                            self.define(m, name.to_string(), Ns::Macro, item_res(), Vis::In(m));
                        }
                        None => {
                            // A macro whose body is items (`feature! { mod env; pub use … }`,
                            // `cfg_if!` branches) puts those items here once expanded.
                            let expanded = item_groups(mac.mac.tokens.clone());
                            if !expanded.is_empty() {
                                for items in expanded {
                                    self.load_items(m, &items, ctx, true);
                                    self.cfg = true;
                                }
                                continue;
                            }
                        }
                    }
                    collect(item);
                }
                syn::Item::ExternCrate(e) => {
                    let vis = self.vis(m, &e.vis);
                    let alias = e
                        .rename
                        .as_ref()
                        .map(|(_, a)| a.unraw().to_string())
                        .unwrap_or_else(|| e.ident.unraw().to_string());
                    self.pending_extern_crates.push((m, e.ident.unraw().to_string(), alias, vis));
                    if e.ident != "self" {
                        // It names the crate's root module.
                        self.modules[m].block_uses.push(vec![e.ident.unraw().to_string()]);
                    }
                }
                other => {
                    let (names, vis): (Vec<(String, Ns)>, Option<&syn::Visibility>) = match other {
                        syn::Item::Const(i) => (vec![(i.ident.unraw().to_string(), Ns::Value)], Some(&i.vis)),
                        syn::Item::Static(i) => (vec![(i.ident.unraw().to_string(), Ns::Value)], Some(&i.vis)),
                        // A procedural macro is a macro to its users.
                        syn::Item::Fn(i)
                            if has_attr(&i.attrs, "proc_macro") || has_attr(&i.attrs, "proc_macro_attribute") =>
                        {
                            (vec![(i.sig.ident.unraw().to_string(), Ns::Macro)], Some(&i.vis))
                        }
                        syn::Item::Fn(i) if has_attr(&i.attrs, "proc_macro_derive") => {
                            let attr = i.attrs.iter().find(|a| a.path().is_ident("proc_macro_derive"));
                            let name = attr.and_then(|a| {
                                a.parse_args_with(|p: syn::parse::ParseStream| {
                                    let id: syn::Ident = p.parse()?;
                                    let _: TokenStream = p.parse()?;
                                    Ok(id)
                                })
                                .ok()
                            });
                            (name.map(|n| (n.to_string(), Ns::Macro)).into_iter().collect(), Some(&i.vis))
                        }
                        syn::Item::Fn(i) => (vec![(i.sig.ident.unraw().to_string(), Ns::Value)], Some(&i.vis)),
                        syn::Item::Struct(i) => {
                            let mut v = vec![(i.ident.unraw().to_string(), Ns::Type)];
                            if !matches!(i.fields, syn::Fields::Named(_)) {
                                v.push((i.ident.unraw().to_string(), Ns::Value));
                            }
                            (v, Some(&i.vis))
                        }
                        syn::Item::Enum(i) => {
                            let variants: Vec<String> =
                                i.variants.iter().map(|v| v.ident.unraw().to_string()).collect();
                            let vis = self.vis(m, &i.vis);
                            self.define(
                                m,
                                i.ident.unraw().to_string(),
                                Ns::Type,
                                Res::Item(file.clone(), variants.into()),
                                vis,
                            );
                            (vec![], None)
                        }
                        syn::Item::Trait(i) => (vec![(i.ident.unraw().to_string(), Ns::Type)], Some(&i.vis)),
                        syn::Item::TraitAlias(i) => (vec![(i.ident.unraw().to_string(), Ns::Type)], Some(&i.vis)),
                        syn::Item::Type(i) => (vec![(i.ident.unraw().to_string(), Ns::Type)], Some(&i.vis)),
                        syn::Item::Union(i) => (vec![(i.ident.unraw().to_string(), Ns::Type)], Some(&i.vis)),
                        syn::Item::ForeignMod(f) => {
                            for fi in &f.items {
                                let (n, ns, v) = match fi {
                                    syn::ForeignItem::Fn(x) => (x.sig.ident.unraw().to_string(), Ns::Value, &x.vis),
                                    syn::ForeignItem::Static(x) => (x.ident.unraw().to_string(), Ns::Value, &x.vis),
                                    syn::ForeignItem::Type(x) => (x.ident.unraw().to_string(), Ns::Type, &x.vis),
                                    _ => continue,
                                };
                                let vis = self.vis(m, v);
                                self.define(m, n, ns, item_res(), vis);
                            }
                            (vec![], None)
                        }
                        _ => (vec![], None),
                    };
                    if let Some(v) = vis {
                        let vis = self.vis(m, v);
                        for (n, ns) in names {
                            self.define(m, n, ns, item_res(), vis);
                        }
                    }
                    collect(other);
                }
            }
        }
        self.modules[m].paths.extend(paths);
        self.modules[m].block_uses.extend(block_uses);
    }

    fn is_within(&self, inner: usize, outer: usize) -> bool {
        let mut cur = Some(inner);
        while let Some(c) = cur {
            if c == outer {
                return true;
            }
            cur = self.modules[c].parent;
        }
        false
    }

    fn visible(&self, vis: Vis, from: usize) -> bool {
        match vis {
            Vis::Public => true,
            Vis::In(m) => self.is_within(from, m),
        }
    }

    fn lookup(&self, m: usize, name: &str, ns: Ns) -> Vec<(Res, Vis)> {
        let key = (name.to_string(), ns);
        let md = &self.modules[m];
        let explicit = md.explicit.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let globbed = md.globbed.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        if explicit.is_empty() || md.conditional.contains(&key) {
            explicit.iter().chain(globbed).cloned().collect()
        } else {
            explicit.to_vec()
        }
    }

    /// What a path names: (namespace, resolution) pairs. `fallback` makes a name missing from a
    /// module of the repository stand for that module (final pass); without it, the path has no
    /// resolution yet (import fixpoint). `unresolved` counts fallbacks.
    fn resolve(
        &self,
        m: usize,
        segs: &[String],
        last_ns: Option<Ns>,
        fallback: bool,
        unresolved: &mut Vec<String>,
    ) -> Vec<(Ns, Res)> {
        let krate = self.modules[m].krate;
        let Some(first) = segs.first() else { return Vec::new() };
        let mut rest = &segs[1..];
        let start: Vec<Res> = match first.as_str() {
            "::" => {
                let Some(name) = rest.first() else { return Vec::new() };
                rest = &rest[1..];
                vec![self.crates[krate].extern_prelude.get(name).cloned().unwrap_or(Res::External)]
            }
            "crate" => vec![Res::Module(self.modules[m].root)],
            "self" => vec![Res::Module(m)],
            "super" => vec![Res::Module(self.modules[m].parent.unwrap_or(m))],
            "Self" => return Vec::new(),
            name if rest.is_empty() => {
                // `use name::*;` reads a module in scope; `use name;` names a crate of the extern
                // prelude.
                let local: Vec<(Ns, Res)> = [Ns::Type, Ns::Value, Ns::Macro]
                    .into_iter()
                    .flat_map(|ns| self.lookup(m, name, ns).into_iter().map(move |(r, _)| (ns, r)))
                    .collect();
                if !local.is_empty() {
                    return local;
                }
                return self.crates[krate]
                    .extern_prelude
                    .get(name)
                    .map(|r| vec![(Ns::Type, r.clone())])
                    .unwrap_or_default();
            }
            name => {
                let local: Vec<Res> = self.lookup(m, name, Ns::Type).iter().map(|(r, _)| r.clone()).collect();
                if !local.is_empty() {
                    local
                } else {
                    vec![self.crates[krate].extern_prelude.get(name).cloned().unwrap_or(Res::External)]
                }
            }
        };
        let mut out = Vec::new();
        for s in start {
            self.walk(m, s, rest, last_ns, fallback, unresolved, &mut out);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        from: usize,
        cur: Res,
        rest: &[String],
        last_ns: Option<Ns>,
        fallback: bool,
        unresolved: &mut Vec<String>,
        out: &mut Vec<(Ns, Res)>,
    ) {
        let Res::Module(id) = cur else {
            // Past an item: its variants or associated items, in the same file; outside the
            // repository, whatever it is.
            for ns in [Ns::Type, Ns::Value, Ns::Macro] {
                out.push((ns, cur.clone()));
            }
            return;
        };
        let Some(seg) = rest.first() else {
            out.push((Ns::Type, cur));
            return;
        };
        if seg == "super" {
            let parent = Res::Module(self.modules[id].parent.unwrap_or(id));
            return self.walk(from, parent, &rest[1..], last_ns, fallback, unresolved, out);
        }
        if seg == "self" {
            return self.walk(from, cur, &rest[1..], last_ns, fallback, unresolved, out);
        }
        let last = rest.len() == 1;
        let mut candidates: Vec<(Ns, Res, Vis)> = Vec::new();
        for ns in [Ns::Type, Ns::Value, Ns::Macro] {
            if (!last && ns != Ns::Type) || (last && last_ns.is_some_and(|n| n != ns)) {
                continue;
            }
            candidates.extend(self.lookup(id, seg, ns).into_iter().map(|(r, v)| (ns, r, v)));
        }
        // What the asking module may see; all of it if nothing (rustc would refuse the path, so
        // this is a configuration or a visibility this resolver does not model).
        if candidates.iter().any(|(_, _, v)| self.visible(*v, from)) {
            candidates.retain(|(_, _, v)| self.visible(*v, from));
        }
        let found = !candidates.is_empty();
        for (ns, r, _) in candidates {
            if last {
                out.push((ns, r));
            } else {
                self.walk(from, r, &rest[1..], last_ns, fallback, unresolved, out);
            }
        }
        if !found && fallback && !self.modules[id].opaque {
            unresolved.push(format!("{}: {}", self.modules[id].file, rest.join("::")));
            out.push((Ns::Type, cur));
        }
    }

    /// Import resolution to a fixpoint.
    fn resolve_imports(&mut self) {
        loop {
            let mut adds: Vec<(usize, bool, String, Ns, Res, Vis, bool)> = Vec::new();
            let mut none = Vec::new();
            for m in 0..self.modules.len() {
                for imp in &self.modules[m].imports {
                    match &imp.kind {
                        ImportKind::Single(name, self_only) => {
                            if name == "_" {
                                continue;
                            }
                            for (ns, res) in self.resolve(m, &imp.path, None, false, &mut none) {
                                if !*self_only || ns == Ns::Type {
                                    adds.push((m, false, name.clone(), ns, res, imp.vis, imp.cfg));
                                }
                            }
                        }
                        ImportKind::Glob => {
                            for (_, res) in self.resolve(m, &imp.path, None, false, &mut none) {
                                match res {
                                    Res::Module(t) => {
                                        let md = &self.modules[t];
                                        let keys: HashSet<&(String, Ns)> =
                                            md.explicit.keys().chain(md.globbed.keys()).collect();
                                        for key in keys {
                                            for (r, v) in self.lookup(t, &key.0, key.1) {
                                                if self.visible(v, m) {
                                                    adds.push((
                                                        m,
                                                        true,
                                                        key.0.clone(),
                                                        key.1,
                                                        r.clone(),
                                                        imp.vis,
                                                        false,
                                                    ));
                                                }
                                            }
                                        }
                                    }
                                    Res::Item(file, variants) => {
                                        for v in variants.iter() {
                                            for ns in [Ns::Type, Ns::Value] {
                                                let r = Res::Item(file.clone(), Rc::from(Vec::new()));
                                                adds.push((m, true, v.clone(), ns, r, imp.vis, false));
                                            }
                                        }
                                    }
                                    Res::External => {}
                                }
                            }
                        }
                    }
                }
            }
            let mut changed = false;
            for (m, glob, name, ns, res, vis, cfg) in adds {
                let md = &mut self.modules[m];
                if cfg && md.conditional.insert((name.clone(), ns)) {
                    changed = true;
                }
                let table = if glob { &mut md.globbed } else { &mut md.explicit };
                let slot = table.entry((name, ns)).or_default();
                if !slot.iter().any(|(r, _)| *r == res) {
                    slot.push((res, vis));
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for m in 0..self.modules.len() {
            let opaque = self.modules[m].imports.iter().any(|imp| {
                matches!(imp.kind, ImportKind::Glob) && {
                    let r = self.resolve(m, &imp.path, None, false, &mut Vec::new());
                    r.is_empty() || r.iter().any(|(_, r)| *r == Res::External)
                }
            });
            self.modules[m].opaque = opaque;
        }
    }

    fn file_of(&self, r: &Res) -> Option<Rc<str>> {
        match r {
            Res::Module(id) => Some(self.modules[*id].file.clone()),
            Res::Item(f, _) => Some(f.clone()),
            Res::External => None,
        }
    }

    fn collect_edges(&mut self) -> Vec<String> {
        let mut unresolved = Vec::new();
        let mut edges = Vec::new();
        let explain = std::env::var("RUST_REF_EXPLAIN").ok();
        for m in 0..self.modules.len() {
            let md = &self.modules[m];
            if explain.as_deref() == Some(&*md.file) {
                eprintln!(
                    "rust reference explain: module {m} of crate {}: {} paths, {} uses",
                    md.krate,
                    md.paths.len(),
                    md.imports.len() + md.block_uses.len()
                );
            }
            let prelude = &self.crates[md.krate].extern_prelude;
            let counted = |p: &Vec<String>| {
                matches!(p[0].as_str(), "crate" | "self" | "super" | "::") || prelude.contains_key(&p[0])
            };
            let uses = md.imports.iter().map(|i| (&i.path, None)).chain(md.block_uses.iter().map(|p| (p, None)));
            let paths = md.paths.iter().filter(|(p, _)| counted(p)).map(|(p, ns)| (p, *ns));
            for (p, ns) in uses.chain(paths) {
                let before = unresolved.len();
                let found = self.resolve(m, p, ns, true, &mut unresolved);
                for u in &mut unresolved[before..] {
                    *u = format!("{u} (asked by {}: {})", md.file, p.join("::"));
                }
                for (_, r) in found {
                    if explain.as_deref() == Some(&*md.file) {
                        eprintln!("rust reference explain: {} -> {:?}", p.join("::"), self.file_of(&r));
                    }
                    if let Some(f) = self.file_of(&r) {
                        edges.push((md.file.to_string(), f.to_string()));
                    }
                }
            }
        }
        for (a, b) in edges {
            self.edges.insert((a, b));
        }
        unresolved
    }
}

/// `cargo metadata --no-deps` of the workspace at `dir` (or of the manifest given).
fn metadata(dir: &Path, manifest: Option<&Path>) -> Option<serde_json::Value> {
    let mut cmd = std::process::Command::new("cargo");
    cmd.args(["metadata", "--no-deps", "--format-version", "1", "--offline"]).current_dir(dir);
    if let Some(m) = manifest {
        cmd.arg("--manifest-path").arg(m);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        eprintln!(
            "rust reference: cargo metadata {}: {}",
            manifest.map(|m| m.display().to_string()).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

const LIB_KINDS: [&str; 6] = ["lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"];

/// Edges of the repository at `repo` (tracked files, `/`-separated, relative), and a summary
/// line for stderr.
pub fn edges(repo: &Path) -> (BTreeSet<(String, String)>, String) {
    let repo = repo.canonicalize().expect("repository path");
    let ls = std::process::Command::new("git").arg("ls-files").current_dir(&repo).output().expect("git ls-files");
    let tracked: HashSet<String> = String::from_utf8_lossy(&ls.stdout).lines().map(str::to_string).collect();

    // Packages: the top workspace, then any tracked manifest outside it.
    let mut packages: Vec<serde_json::Value> = Vec::new();
    let mut seen_manifests: HashSet<PathBuf> = HashSet::new();
    let mut manifests: Vec<&String> = tracked.iter().filter(|p| p.ends_with("Cargo.toml")).collect();
    manifests.sort_by_key(|p| (p.matches('/').count(), p.to_string()));
    for (i, manifest) in std::iter::once(None).chain(manifests.iter().map(|m| Some(repo.join(m)))).enumerate() {
        if let Some(m) = &manifest {
            if seen_manifests.contains(m) {
                continue;
            }
            // A virtual manifest or a member already listed.
            if i > 0 && !std::fs::read_to_string(m).unwrap_or_default().contains("[package]") {
                continue;
            }
        } else if !repo.join("Cargo.toml").exists() {
            continue;
        }
        let Some(md) = metadata(&repo, manifest.as_deref()) else { continue };
        for p in md["packages"].as_array().into_iter().flatten() {
            let mp = PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
            if seen_manifests.insert(normalize(&mp)) && mp.starts_with(&repo) {
                packages.push(p.clone());
            }
        }
    }

    let mut world = World {
        repo: repo.clone(),
        tracked,
        modules: Vec::new(),
        crates: Vec::new(),
        parsed: HashMap::new(),
        edges: BTreeSet::new(),
        pending_extern_crates: Vec::new(),
        parse_errors: Vec::new(),
        cfg: false,
    };
    // Every target is a crate; libraries are found by their package's directory.
    struct Target {
        package: usize,
        kind: String,
        root: usize,
    }
    let mut targets: Vec<Target> = Vec::new();
    let mut lib_of_dir: HashMap<PathBuf, (String, usize)> = HashMap::new();
    for (pi, p) in packages.iter().enumerate() {
        let dir = normalize(Path::new(p["manifest_path"].as_str().unwrap_or_default()).parent().unwrap());
        for t in p["targets"].as_array().into_iter().flatten() {
            let kinds: Vec<&str> = t["kind"].as_array().into_iter().flatten().filter_map(|k| k.as_str()).collect();
            let src = PathBuf::from(t["src_path"].as_str().unwrap_or_default());
            let krate = world.crates.len();
            world.crates.push(Crate { extern_prelude: HashMap::new() });
            let Some(root) = world.load_crate(&src, krate) else { continue };
            let kind =
                if kinds.iter().any(|k| LIB_KINDS.contains(k)) { "lib" } else { kinds.first().copied().unwrap_or("") };
            if kind == "lib" {
                lib_of_dir.insert(dir.clone(), (t["name"].as_str().unwrap_or_default().replace('-', "_"), root));
            }
            targets.push(Target { package: pi, kind: kind.to_string(), root });
        }
    }
    for t in &targets {
        let p = &packages[t.package];
        let dir = normalize(Path::new(p["manifest_path"].as_str().unwrap_or_default()).parent().unwrap());
        let mut prelude: HashMap<String, Res> = HashMap::new();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let kind = d["kind"].as_str().unwrap_or("normal");
            if (kind == "build") != (t.kind == "custom-build") {
                continue;
            }
            let local = d["path"].as_str().and_then(|dp| lib_of_dir.get(&normalize(Path::new(dp))));
            let name = match (d["rename"].as_str(), local) {
                (Some(r), _) => r.replace('-', "_"),
                (None, Some((lib, _))) => lib.clone(),
                (None, None) => d["name"].as_str().unwrap_or_default().replace('-', "_"),
            };
            let res = local.map(|(_, root)| Res::Module(*root)).unwrap_or(Res::External);
            prelude.insert(name, res);
        }
        if t.kind != "lib" && t.kind != "custom-build" {
            if let Some((lib, root)) = lib_of_dir.get(&dir) {
                prelude.insert(lib.clone(), Res::Module(*root));
            }
        }
        let krate = world.modules[t.root].krate;
        world.crates[krate].extern_prelude = prelude;
    }
    for (m, name, alias, vis) in std::mem::take(&mut world.pending_extern_crates) {
        let md = &world.modules[m];
        let (krate, root) = (md.krate, md.root);
        let res = if name == "self" {
            Res::Module(root)
        } else {
            world.crates[krate].extern_prelude.get(&name).cloned().unwrap_or(Res::External)
        };
        if m == root {
            world.crates[krate].extern_prelude.insert(alias.clone(), res.clone());
        }
        world.define(m, alias, Ns::Type, res, vis);
    }
    world.resolve_imports();
    let unresolved = world.collect_edges();
    if std::env::var_os("RUST_REF_DEBUG").is_some() {
        let mut u = unresolved.clone();
        u.sort();
        u.dedup();
        for line in u {
            eprintln!("rust reference unresolved: {line}");
        }
        for e in &world.parse_errors {
            eprintln!("rust reference parse error: {e}");
        }
    }
    let edges: BTreeSet<(String, String)> = world
        .edges
        .iter()
        .filter(|(a, b)| a != b && world.tracked.contains(a) && world.tracked.contains(b))
        .cloned()
        .collect();
    let summary = format!(
        "rust reference: {} packages, {} crates, {} modules, {} files parsed ({} failed), {} names found by falling back to their module",
        packages.len(),
        targets.len(),
        world.modules.len(),
        world.parsed.len(),
        world.parse_errors.len(),
        unresolved.len()
    );
    (edges, summary)
}
