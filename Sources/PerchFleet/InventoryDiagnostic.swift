/// One problem in an inventory, at the line and column (1-based) where it is; prints as
/// `FILE:LINE:COL: message` like profile diagnostics (compilers' form, so CI annotates the line).
public struct InventoryDiagnostic: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)" }
}
