import CLibFuzzer
import Glibc

/// Runs libFuzzer (its flags and corpus directories come from the command line) with `target` called on
/// each input, then exits with libFuzzer's status. Call it from the target's `main`.
public func runFuzzer(_ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, target))
}
