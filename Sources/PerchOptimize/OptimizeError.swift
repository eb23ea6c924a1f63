/// Problems `perch optimize` reports; each says what is wrong and what would fix it.
public enum OptimizeError: Error, CustomStringConvertible, Equatable {
    /// A dataset or labels file is missing or does not match the model (exit 2).
    case badDataset(String, hint: String)
    /// Weights + arena exceed the profile's memory budget (exit 2).
    case doesNotFit(String, hint: String)
    /// The accuracy budget cannot be met with what the profile allows (exit 1).
    case accuracyBudget(String, hint: String)
    /// The model cannot be evaluated (exit 2).
    case badModel(String, hint: String)

    public var what: String {
        switch self {
        case .badDataset(let w, _), .doesNotFit(let w, _), .accuracyBudget(let w, _), .badModel(let w, _): return w
        }
    }

    public var hint: String {
        switch self {
        case .badDataset(_, let h), .doesNotFit(_, let h), .accuracyBudget(_, let h), .badModel(_, let h): return h
        }
    }

    public var description: String { what + " — " + hint }
}
