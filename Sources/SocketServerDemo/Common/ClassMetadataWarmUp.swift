/// Initialises a handler class's runtime metadata in the serving process, before any fork.
///
/// A subclass of a generic class (every `Dependent…RequestHandler` subclass) has its metadata built by the
/// runtime at its first use: about 17,000 instructions (mangled-name lookups, layout). Built from a factory
/// closure, a forking server's handler is first used in the child, so every child paid for it again;
/// touched here once, the children inherit it. Costs nothing measurable in the other modes.
enum ClassMetadataWarmUp {
    /// Makes sure the metadata of `type` is initialised (calling its metadata accessor is what does it).
    @inline(never)
    static func prepare(_ type: AnyClass) {
        withExtendedLifetime(type) {}
    }
}
