import Glibc

extension Array where Element == UInt8 {
    /// Appends `count` zero bytes: one allocation, one `memcpy` of the current bytes and one `memset`.
    ///
    /// `append(contentsOf: repeatElement(0, count:))` does the same, but in an unoptimised build it walks the
    /// `Repeated` collection one element at a time through generic witness-table lookups, each taking a
    /// runtime lock: growing by 64 KiB cost milliseconds, and seconds under ThreadSanitizer with a few threads
    /// reading at once. Every call reallocates, so a caller that grows a buffer repeatedly asks for a geometric
    /// amount (at least the current count) to keep the cost amortised O(1) a byte.
    /// - Precondition: the new count fits in `Int` (callers bound their sizes long before).
    mutating func appendZeros(_ count: Int) {
        guard count > 0 else { return }
        let old = self.count
        let (needed, overflow) = old.addingReportingOverflow(count)
        precondition(!overflow, "byte buffer size overflow")
        let grown = [UInt8](unsafeUninitializedCapacity: needed) { buffer, initialized in
            guard let base = buffer.baseAddress else {
                initialized = 0
                return
            }
            withUnsafeBufferPointer { current in
                if let source = current.baseAddress { memcpy(base, source, old) }
            }
            memset(base + old, 0, count)
            initialized = needed
        }
        self = grown
    }
}
