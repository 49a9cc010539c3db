// Fuzzes the demo's `StaticPathResolver` against a directory tree built to tempt it: symbolic links out
// of the served directory (to a directory, to a file, to an absolute path, to a sibling whose name starts
// with the root's), an index file that is a link out, a link loop, names with `%`, spaces and dots.
// Checked for every request target:
// - a file or directory it resolves to is canonical, is the root or below `root/`, is not in the
//   outside tree, and is of the kind it claims;
// - a redirect's Location is a path on this server (`/` not followed by `/` or `\`), and for a target the
//   parser accepts (printable ASCII) holds no control character, so no header can be injected;
// - nothing traps, whatever the bytes (NUL, `%00`, `%2f`, `..` spelled every way).
//
// The tree is made once per process under $FUZZ_WORKDIR (or $TMPDIR, /tmp) and removed at exit.
@testable import DemoHTTP
import FuzzSupport
import Glibc

private final class Tree: @unchecked Sendable {
    let base: String
    let resolver: StaticPathResolver
    let root: [UInt8]
    let outside: [UInt8]
    let sibling: [UInt8]

    init() {
        let parent = getenv("FUZZ_WORKDIR").map { String(cString: $0) }
            ?? getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(parent)/fuzz-static-path-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fuzzFail("mkdtemp failed under \(parent): errno \(errno)")
        }
        base = String(cString: made)
        for directory in ["root", "root/index-less", "root/with-index", "root/sub", "root/sub/deeper",
                          "root/escape-index", "root/%2e%2e", "outside", "outside/dir", "rootx"] {
            fuzzRequire(mkdir("\(base)/\(directory)", 0o755) == 0, "mkdir \(directory): errno \(errno)")
        }
        for file in ["root/file.txt", "root/index-less/a.txt", "root/with-index/index.html",
                     "root/sub/deeper/file.txt", "root/%41.txt", "root/a b.txt", "root/.hidden", "root/..dots",
                     "root/%2e%2e/inside.txt", "outside/secret.txt", "outside/dir/index.html", "rootx/file.txt"] {
            let fd = open("\(base)/\(file)", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            fuzzRequire(fd >= 0, "create \(file): errno \(errno)")
            close(fd)
        }
        let links = [
            ("../outside", "root/link-out"), ("../outside/secret.txt", "root/link-out-file"),
            ("\(base)/outside", "root/absolute-out"), ("/etc", "root/etc"), ("index-less", "root/link-in"),
            ("../rootx", "root/link-sibling"), ("loop", "root/loop"), ("../../outside/secret.txt",
            "root/escape-index/index.html"), ("../../outside/dir", "root/sub/up-and-out"), ("..", "root/parent"),
        ]
        for (target, name) in links {
            fuzzRequire(symlink(target, "\(base)/\(name)") == 0, "symlink \(name): errno \(errno)")
        }
        guard let resolver = StaticPathResolver(directory: "\(base)/root") else { fuzzFail("no resolver for \(base)/root") }
        self.resolver = resolver
        root = resolver.root
        outside = FileSystemPath.canonical(Array("\(base)/outside".utf8)) ?? []
        sibling = FileSystemPath.canonical(Array("\(base)/rootx".utf8)) ?? []
        atexit { removeTree(tree.base) }
    }
}

/// `rm -rf`, without following links.
private func removeTree(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    if (info.st_mode & S_IFMT) == S_IFDIR, let directory = opendir(path) {
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(directory)
        for name in names { removeTree(path + "/" + name) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

private let tree = Tree()

private func checkInside(_ path: [UInt8], directory: Bool, target: [UInt8]) {
    let what = "\(describe(target)) resolved to \(describe(path))"
    fuzzRequire(FileSystemPath.canonical(path) == path, "\(what), which is not canonical")
    fuzzRequire(path == tree.root || path.starts(with: tree.root + [UInt8(ascii: "/")]), "\(what), outside the root")
    fuzzRequire(!path.starts(with: tree.outside) && !path.starts(with: tree.sibling), "\(what), in the outside tree")
    guard let info = FileSystemPath.status(path) else { fuzzFail("\(what), which does not exist") }
    if directory {
        fuzzRequire(FileSystemPath.isDirectory(info.st_mode), "\(what), not a directory")
    } else {
        fuzzRequire(FileSystemPath.isRegularFile(info.st_mode), "\(what), not a regular file")
    }
}

/// One input. Also exported under libFuzzer's name, which its (unused) `main` refers to.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStaticPath(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, count: size)
    let target = input.rest()
    let printable = target.allSatisfy { (0x21...0x7E).contains($0) }
    switch tree.resolver.resolve(target) {
    case .file(let path, let name):
        checkInside(path, directory: false, target: target)
        fuzzRequire(!name.contains(UInt8(ascii: "/")), "file name \(describe(name)) holds a slash")
    case .directory(let path, _):
        checkInside(path, directory: true, target: target)
    case .redirect(let location):
        let bytes = Array(location.utf8)
        fuzzRequire(bytes.first == UInt8(ascii: "/"), "\(describe(target)) redirects to \(describe(bytes))")
        fuzzRequire(bytes.count < 2 || (bytes[1] != UInt8(ascii: "/") && bytes[1] != UInt8(ascii: "\\")),
                    "\(describe(target)) redirects off the server, to \(describe(bytes))")
        if printable {
            fuzzRequire(bytes.allSatisfy { (0x21...0x7E).contains($0) },
                        "\(describe(target)) redirects to \(describe(bytes)), which a header cannot carry")
        }
    case .badRequest, .notFound:
        break
    }
    return 0
}

@main
enum StaticPathFuzzer {
    static func main() {
        runFuzzer { data, size in fuzzStaticPath(data, size) }
    }
}
