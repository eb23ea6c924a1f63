import ArgumentParser
import Foundation
import PerchProfiles

/// `perch profile validate FILE…` / `perch profile show NAME|FILE [--json]` / `perch profile probe --host …`
struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Check and show device profiles (device-profiles/README.md describes them).",
        discussion: """
            A NAME is looked up as NAME.yaml in $PERCH_PROFILES (colon-separated directories), then \
            ./device-profiles, then the device-profiles/ folder nearest the perch executable. \
            'host' is this machine, detected at run time.
            """,
        subcommands: [Validate.self, Show.self, Probe.self]
    )

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check profile files and report every problem as FILE:LINE:COL: message.",
            discussion: "Prints 'ok FILE (NAME)' for each good file. Exit 0 if all are good, 2 otherwise."
        )

        @Argument(help: "Profile files (.yaml), or names of bundled profiles.")
        var files: [String] = []

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("name at least one profile file") }
        }

        func run() throws {
            let loader = ProfileLoader()
            var reported = Set<ProfileDiagnostic>()
            var all = [ProfileDiagnostic]()
            var badFiles = 0
            for argument in files {
                var file = argument
                if !ProfileLoader.looksLikePath(argument), let path = loader.path(forName: argument, besides: nil) {
                    file = path
                }
                let result = loader.validate(file: file)
                if result.isValid {
                    let what = (result.name ?? "") + (result.isAbstract ? ", abstract base" : "")
                    print("ok \(file) (\(what))")
                } else {
                    badFiles += 1
                    for d in result.diagnostics where reported.insert(d).inserted {
                        all.append(d)
                        status(d.description)
                    }
                }
            }
            if badFiles > 0 {
                let problems = all.count == 1 ? "1 problem" : "\(all.count) problems"
                throw CLIError(
                    .badInput, "\(problems) in \(badFiles) of \(files.count) profile file(s)",
                    hint: "fix the lines above; device-profiles/README.md describes the schema"
                )
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a resolved profile ('extends' applied, defaults filled in).",
            discussion: "Without --json: the profile as YAML, then what the optimizer derives from it."
        )

        @Argument(help: "A bundled profile's name, 'host', or a profile file.")
        var profile: String

        @Flag(help: "Print the resolved profile as JSON.")
        var json = false

        func run() throws {
            let resolved: DeviceProfile
            do {
                resolved = try ProfileLoader().load(nameOrFile: profile)
            } catch {
                if case .invalid(let diagnostics) = error {
                    for d in diagnostics { status(d.description) }
                }
                throw error
            }
            if json {
                print(resolved.jsonText())
            } else {
                var text = resolved.yamlText()
                if let parent = resolved.extends { text = "# resolved from \(resolved.name) extends \(parent)\n" + text }
                print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
                for fact in resolved.derivedFacts { print("# " + fact) }
            }
        }
    }
}
