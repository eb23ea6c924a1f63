/// A model: nodes over named values, graph inputs and outputs with declared types, and the
/// constant tensors (weights) that nodes read.
///
/// Nodes are kept in topological order once `sortTopologically()` or `validate()` has run; every
/// later stage (folding, planning, execution, serialization) relies on that order.
public struct Graph: Sendable, Equatable {
    public var name: String
    public var nodes: [Node]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var initializers: [String: Tensor]
    /// Free-form key/value metadata carried into `.perchm` (producer, opset, model version, …).
    public var metadata: [String: String]

    public init(
        name: String = "", nodes: [Node] = [], inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
        initializers: [String: Tensor] = [:], metadata: [String: String] = [:]
    ) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.metadata = metadata
    }

    /// Names of graph inputs that are not initializers (ONNX allows an initializer to also be
    /// listed as an input, as an overridable default).
    public var runtimeInputs: [ValueInfo] {
        inputs.filter { initializers[$0.name] == nil }
    }

    /// Orders nodes so that each comes after the producers of its inputs (Kahn's algorithm,
    /// stable with respect to the current order), and checks that every read value is defined.
    public mutating func sortTopologically() throws(GraphError) {
        var producer: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            for out in node.outputs where !out.isEmpty {
                if producer[out] != nil { throw .duplicateValue(out) }
                producer[out] = i
            }
        }
        var available = Set<String>()
        for input in inputs { available.insert(input.name) }
        for key in initializers.keys { available.insert(key) }

        var indegree = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, node) in nodes.enumerated() {
            for input in node.inputs where !input.isEmpty {
                if let p = producer[input] {
                    indegree[i] += 1
                    consumers[p].append(i)
                } else if !available.contains(input) {
                    throw .undefinedValue(node: node.displayName, value: input)
                }
            }
        }
        // Stable Kahn: always take the lowest ready index.
        var ready = [Int]()
        for i in 0..<nodes.count where indegree[i] == 0 { ready.append(i) }
        var order = [Int]()
        order.reserveCapacity(nodes.count)
        var head = 0
        while head < ready.count {
            // Keep `ready` sorted from head on so the original order is preserved where possible.
            var minPos = head
            for j in head..<ready.count where ready[j] < ready[minPos] { minPos = j }
            ready.swapAt(head, minPos)
            let n = ready[head]
            head += 1
            order.append(n)
            for c in consumers[n] {
                indegree[c] -= 1
                if indegree[c] == 0 { ready.append(c) }
            }
        }
        if order.count != nodes.count {
            var stuck = [String]()
            for i in 0..<nodes.count where indegree[i] > 0 { stuck.append(nodes[i].displayName) }
            throw .cycle(nodes: stuck)
        }
        nodes = order.map { nodes[$0] }
    }

    /// Sorts, then checks that every graph output is produced.
    public mutating func validate() throws(GraphError) {
        try sortTopologically()
        var defined = Set<String>()
        for input in inputs { defined.insert(input.name) }
        for key in initializers.keys { defined.insert(key) }
        for node in nodes { for out in node.outputs { defined.insert(out) } }
        for output in outputs where !defined.contains(output.name) {
            throw .undefinedOutput(output.name)
        }
    }

    /// Removes nodes whose outputs reach no graph output, and initializers nothing reads.
    public mutating func removeDeadNodes() {
        var live = Set<String>()
        for output in outputs { live.insert(output.name) }
        var keep = [Bool](repeating: false, count: nodes.count)
        var i = nodes.count - 1
        while i >= 0 {
            let node = nodes[i]
            if node.outputs.contains(where: { live.contains($0) }) {
                keep[i] = true
                for input in node.inputs where !input.isEmpty { live.insert(input) }
            }
            i -= 1
        }
        var kept = [Node]()
        for (j, node) in nodes.enumerated() where keep[j] { kept.append(node) }
        nodes = kept
        // An initializer that is also a declared input stays: dropping it would turn it into a
        // required runtime input.
        var declared = Set<String>()
        for input in inputs { declared.insert(input.name) }
        for key in Array(initializers.keys) where !live.contains(key) && !declared.contains(key) {
            initializers[key] = nil
        }
    }

    /// Total bytes of constant tensors.
    public var weightsBytes: Int {
        var total = 0
        for (_, t) in initializers { total += t.bytes.count }
        return total
    }
}
