/// An async handler's output (`wfile`): writes that return at once while the connection's queued output is
/// under the high watermark (`outputHighWatermark`), and otherwise suspend until the peer has taken enough
/// that it fell to the low watermark (`outputLowWatermark`). Use it only from the handler's task.
///
/// What the socket takes goes out at once; the rest is queued by the event mode (bounded by
/// `maxBufferedOutput`). No copy beyond that queue, no allocation per write.
public struct AsyncRequestWriter {
    let driver: AsyncConnectionDriver

    init(driver: AsyncConnectionDriver) {
        self.driver = driver
    }

    /// Sends `bytes`: returns at once while queued output stays under the high watermark, else waits until
    /// it fell to the low one.
    /// - Throws: the connection's failure, or `AsyncConnectionClosed`, when it no longer takes writes; a
    ///   `SocketError` with `isTimeout` when the handler's `timeout` expired while waiting (the bytes stay
    ///   queued); `CancellationError` when the task was cancelled.
    nonisolated(nonsending) public func write(_ bytes: UnsafeRawBufferPointer) async throws {
        if try driver.writeNow(bytes) { try await waitBelowLowWatermark() }
    }

    /// Sends `bytes`; see `write(_:)`.
    nonisolated(nonsending) public func write(_ bytes: [UInt8]) async throws {
        if try bytes.withUnsafeBytes({ try driver.writeNow($0) }) { try await waitBelowLowWatermark() }
    }

    /// Sends `text` as UTF-8.
    nonisolated(nonsending) public func write(_ text: String) async throws {
        var text = text
        if try text.withUTF8({ try driver.writeNow(UnsafeRawBufferPointer($0)) }) {
            try await waitBelowLowWatermark()
        }
    }

    /// Sends `header`, then a file region with `sendfile(2)` (see `EventConnection.sendFile(_:after:)`),
    /// after what was written before; returns at once when the connection's queued output (the region's
    /// unsent bytes included) is under the high watermark, else suspends until it has drained to the low
    /// watermark, as `write` does.
    /// - Parameters:
    ///   - region: the part of the file to send.
    ///   - header: bytes to send first (a response head, in one segment with the file's first bytes);
    ///     empty by default.
    /// - Throws: the connection's failure (`FileRegionError.fileShrank` when the file ended early), or
    ///   `AsyncConnectionClosed`, when it no longer takes writes.
    nonisolated(nonsending) public func sendFile(_ region: FileRegion, after header: [UInt8] = []) async throws {
        if try driver.sendFileNow(region, after: header) { try await waitBelowLowWatermark() }
    }

    /// Waits until everything written has been taken by the peer.
    /// - Throws: as `write(_:)`.
    nonisolated(nonsending) public func flush() async throws {
        try await driver.waitForOutput(atMost: 0)
    }

    nonisolated(nonsending) private func waitBelowLowWatermark() async throws {
        try await driver.waitForOutput(atMost: driver.outputLowWatermark)
    }
}
