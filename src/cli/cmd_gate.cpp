#include <algorithm>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "avps/core/clock.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/json_schema.hpp"
#include "avps/gates/integrity.hpp"
#include "avps/gates/record.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/project.hpp"
#include "avps/report/gate_rules.hpp"
#include "avps/report/read_model.hpp"
#include "avps/skills/registry.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {

struct GateOptions {
  std::string dir = ".";
  std::string expect_head;
  std::string junit;
  std::string require;
};

// --expect-head SEQ:HASH or HASH: the head a CI job pinned must still be an event of the chain,
// at its place; otherwise the history it vouched for was rewritten. The events are read a page
// at a time, without their bodies.
Result<std::optional<core::Violation>> check_expected_head(const std::string& pinned, const ledger::Ledger& ledger) {
  const size_t colon = pinned.find(':');
  const std::string hash = colon == std::string::npos ? pinned : pinned.substr(colon + 1);
  std::optional<int64_t> seq;
  if (colon != std::string::npos) {
    try {
      seq = std::stoll(pinned.substr(0, colon));
    } catch (const std::exception&) {
      seq = -1;
    }
  }
  const core::Violation rewritten{"ledger.expected_head", ".avps/ledger.db",
                                  "the pinned head " + pinned +
                                      " is not an event of this ledger's chain: the history it vouched for was "
                                      "rewritten (or this is another project)"};
  ledger::Ledger::EventQuery page;
  page.limit = 4096;
  page.bodies = false;
  for (;;) {
    AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, ledger.events(page));
    for (const ledger::Event& e : events) {
      if (e.hash == hash) {  // at its place, or moved: rewritten
        return !seq || *seq == e.seq ? std::nullopt : std::optional<core::Violation>(rewritten);
      }
    }
    if (events.size() < page.limit) {
      return std::optional<core::Violation>(rewritten);
    }
    page.after_seq = events.back().seq;
  }
}

// XML 1.0 text: the five escapes, and control characters (which XML cannot hold) as U+FFFD.
std::string xml_escaped(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += "\xEF\xBF\xBD";
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// JUnit XML (the Ant/Jenkins schema): one test case per rule and target. A rule with no
// violation is one passing case; work in progress beside a running writer is a skipped case.
std::string junit_xml(const std::string& project, const std::vector<std::string>& rules,
                      const std::vector<core::Violation>& failing, const std::vector<core::Violation>& in_progress) {
  std::string cases;
  int tests = 0;
  std::set<std::string> failed_rules;
  for (const core::Violation& v : failing) {
    failed_rules.insert(v.rule);
  }
  for (const std::string& rule : rules) {
    for (const auto* list : {&failing, &in_progress}) {
      for (const core::Violation& v : *list) {
        if (v.rule != rule) {
          continue;
        }
        ++tests;
        cases += "    <testcase classname=\"avps.gate." + xml_escaped(rule) + "\" name=\"" + xml_escaped(v.subject) +
                 "\">\n";
        cases += list == &failing ? "      <failure type=\"" + xml_escaped(rule) + "\" message=\"" +
                                        xml_escaped(v.message) + "\">" + xml_escaped(v.subject + ": " + v.message) +
                                        "</failure>\n"
                                  : "      <skipped message=\"in progress while avps writes: " + xml_escaped(v.message) +
                                        "\"/>\n";
        cases += "    </testcase>\n";
      }
    }
    if (!failed_rules.count(rule)) {
      ++tests;
      cases += "    <testcase classname=\"avps.gate." + xml_escaped(rule) + "\" name=\"" + xml_escaped(project) +
               "\"/>\n";
    }
  }
  const std::string counts = " tests=\"" + std::to_string(tests) + "\" failures=\"" + std::to_string(failing.size()) +
                             "\" errors=\"0\" skipped=\"" + std::to_string(in_progress.size()) + "\"";
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"avps gate\"" + counts + ">\n" +
         "  <testsuite name=\"avps gate " + xml_escaped(project) + "\"" + counts + ">\n" + cases +
         "  </testsuite>\n</testsuites>\n";
}

// --require PHASE checked before any rule runs: a typo is a usage error (exit 2), at once. An
// empty optional when none is asked, or when the project's skills do not load (then no rule reading
// the production's standing runs, and the gate fails saying why).
Result<std::optional<size_t>> required_phase(const GateOptions& options) {
  if (options.require.empty()) {
    return std::optional<size_t>();
  }
  const std::filesystem::path dir = options.dir;
  Result<skills::Registry> registry = skills::Registry::load(project::data_dir(), &dir);
  if (!registry) {
    return std::optional<size_t>();
  }
  AVPS_TRY_ASSIGN(size_t found, report::find_phase(report::phases_of(registry->stage_graph()), options.require));
  return std::optional<size_t>(found);
}

// budget.cap, from the gate's own snapshot: the budget tables (which the integrity check holds to
// their events) and the overrides, no fold of the record. Through a connection of its own when one
// reads that snapshot (it runs beside the integrity check's pass), closed once the sums are made.
Result<std::vector<core::Violation>> check_caps(const GateOptions& options, const ledger::Ledger& ledger) {
  AVPS_TRY_ASSIGN(project::Config config, project::load_config({options.dir, project::data_dir(), {}, {}}));
  Result<std::unique_ptr<ledger::Ledger>> own = ledger.another_reader();
  return report::check_spend(config.budget, own && *own ? **own : ledger);
}

// require.phase, over the read model of a read-only project (a second snapshot: see docs/cli.md).
Result<std::vector<core::Violation>> check_required(const GateOptions& options, size_t required,
                                                    const core::Clock& clock) {
  AVPS_TRY_ASSIGN(std::unique_ptr<project::Project> project,
                  project::Project::open(options.dir, ledger::OpenMode::read_only, {}, clock));
  AVPS_TRY_ASSIGN(report::ProjectView view, report::read_project(*project, report::Folds::record));
  return report::check_reached(view, required);
}

void run_gate(const GateOptions& options, Context& ctx) {
  core::SystemClock clock;
  const Result<std::optional<size_t>> required = required_phase(options);
  if (!required) {
    ctx.fail(ExitCode::usage, required.error().message);
    return;
  }
  // Beside a running writer: the files first, then the ledger's snapshot, so every file listed
  // was announced or recorded in what the gate reads (gates::ProjectFiles).
  const bool writing_at_start = ledger::writer_active(options.dir);
  const gates::ProjectFiles files = gates::list_project_files(options.dir);
  // Read-only: a gate never changes what it checks, not even to finish an interrupted commit.
  Result<std::unique_ptr<ledger::Ledger>> opened = ledger::Ledger::open(options.dir, ledger::OpenMode::read_only, clock);
  if (!opened) {
    ctx.fail(opened.error());
    return;
  }
  const ledger::Ledger& ledger = **opened;
  ctx.debug("checking " + options.dir + " against ledger head " + std::to_string(ledger.head().seq) + " (" +
            ledger.head().hash.substr(0, 12) + "...), shipped data in " + project::data_dir().string());
  // The record check runs on a second thread beside the integrity check, over the same read-only
  // snapshot (through a connection of its own that reads it, Ledger::another_reader, so the two
  // threads do not take turns at one): the two are the gate's two halves of work, and neither
  // changes what the other finds. It reads its artifact.recorded events itself. The project's own
  // artifact kinds are declared first, so both threads read every name the same way (the integrity
  // check declares them again, the same, and reports a failure to). Each object the record check
  // reads, intact, is noted with what its kind's schema says of it (gates::CheckedObjects); the
  // integrity check reads none of them before the record check has ended (after_events waits for
  // it), and then takes the notes instead of reading, hashing, parsing and validating those objects
  // again. The findings are listed as ever: the integrity check's, then the record check's.
  std::ignore = project::declare_project_kinds(options.dir);
  core::prepare_concurrent_validation();  // both threads validate schemas
  gates::CheckedObjects checked(options.dir);
  gates::RecordCheckOptions record_options;
  record_options.checked = &checked;
  // The integrity check keeps one core busy: the record check takes the others (on two cores,
  // one thread beside it; a helper thread more only cost CPU there, its caches cold).
  record_options.threads = std::max(2u, std::thread::hardware_concurrency()) - 1;
  // (Declared after all it reads: if what follows throws, the future's end waits for the thread.)
  std::future<std::vector<core::Violation>> record_check = std::async(
      std::launch::async, [&]() { return gates::check_record(options.dir, ledger, record_options); });
  // budget.cap's sums, beside both (it reads the budget tables: SQLite sums them while the other
  // threads work). Reported where it always was.
  std::future<Result<std::vector<core::Violation>>> caps =
      std::async(std::launch::async, [&]() { return check_caps(options, ledger); });
  std::optional<std::vector<core::Violation>> record;
  gates::IntegrityOptions integrity_options{.checked = &checked};
  // Its objects, faces and renders on every core: the record check, ending first, leaves its
  // core to them.
  integrity_options.threads = std::max(2u, std::thread::hardware_concurrency());
  integrity_options.after_events = [&]() { record = record_check.get(); };
  std::vector<core::Violation> violations = gates::check_integrity(options.dir, ledger, files, integrity_options);
  if (!record) {  // the integrity check stopped before the objects: it did not wait
    record = record_check.get();
  }
  std::vector<std::string> rules = gates::integrity_rules();
  violations.insert(violations.end(), record->begin(), record->end());
  rules.insert(rules.end(), gates::record_rules().begin(), gates::record_rules().end());
  // Where the production stands: the read model status and report read.
  rules.push_back("budget.cap");
  if (!options.require.empty()) {
    rules.push_back("require.phase");
  }
  if (!options.require.empty() && !*required) {
    violations.push_back({"require.phase", options.dir, "not checked: the project's skills and stage graph do not load"});
  }
  auto add_standing = [&](const char* rule, const Result<std::vector<core::Violation>>& found) {
    if (!found) {
      const std::string& why = found.error().message;
      violations.push_back({rule, options.dir, "not checked: " + why.substr(0, why.find('\n'))});
    } else {
      violations.insert(violations.end(), found->begin(), found->end());
    }
  };
  add_standing("budget.cap", caps.get());
  if (*required) {
    add_standing("require.phase", check_required(options, **required, clock));
  }
  if (!options.expect_head.empty()) {
    rules.push_back("ledger.expected_head");
    Result<std::optional<core::Violation>> rewritten = check_expected_head(options.expect_head, ledger);
    if (!rewritten) {
      violations.push_back({"ledger.readable", ".avps/ledger.db", rewritten.error().message});
    } else if (*rewritten) {
      violations.push_back(**rewritten);
    }
  }
  const bool writing = writing_at_start || ledger::writer_active(options.dir);
  std::vector<core::Violation> failing;
  std::vector<core::Violation> in_progress;
  for (core::Violation& v : violations) {
    (writing && v.transient ? in_progress : failing).push_back(std::move(v));
  }
  Result<std::vector<ledger::ArtifactRecord>> artifacts = ledger.artifacts();
  size_t artifact_count = artifacts ? artifacts->size() : 0;
  const ledger::Head head = ledger.head();
  const std::string head_text = std::to_string(head.seq) + ":" + head.hash;
  bool pass = failing.empty();
  ctx.exit = pass ? ExitCode::ok : ExitCode::violation;

  if (!options.junit.empty()) {
    Result<void> written = core::write_file_atomic(options.junit, junit_xml(options.dir, rules, failing, in_progress),
                                                   core::Overwrite::yes, core::Durability::durable);
    if (!written) {
      ctx.fail(ExitCode::environment, "--junit: " + written.error().message);
      return;
    }
  }
  auto listed = [](const std::vector<core::Violation>& list) {
    nlohmann::json out = nlohmann::json::array();
    for (const core::Violation& v : list) {
      // transient: what the next writing command completes (a HEAD or CSV face behind the
      // ledger, an interrupted write), as opposed to damage.
      out.push_back({{"rule", v.rule}, {"subject", v.subject}, {"message", v.message}, {"transient", v.transient}});
    }
    return out;
  };
  if (ctx.json) {
    ctx.emit_json({{"project", options.dir},
                   {"verdict", pass ? "PASS" : "FAIL"},
                   {"checked", {{"artifacts", artifact_count}, {"ledger_events", head.seq}}},
                   {"head", {{"seq", head.seq}, {"hash", head.hash}}},
                   {"writer_active", writing},
                   {"violations", listed(failing)},
                   {"in_progress", listed(in_progress)}});
    return;
  }
  const std::string progress_note =
      in_progress.empty() ? ""
                          : "; an avps process is writing: " + std::to_string(in_progress.size()) +
                                " write(s) in progress not yet complete (see --json), checked when it ends";
  if (pass) {
    ctx.info(ctx.paint("PASS", "32") + " " + options.dir + ": every rule holds (" + std::to_string(artifact_count) +
             " artifacts, " + std::to_string(head.seq) + " ledger events, head " + head_text + ")" + progress_note);
    return;
  }
  // Violations go to stdout too: they are the command's result, not a failure to run it.
  std::cout << ctx.paint("FAIL", "31") << " " << options.dir << ": " << failing.size() << " violation"
            << (failing.size() == 1 ? "" : "s") << " (head " << head_text << ")" << progress_note << "\n";
  for (const core::Violation& v : failing) {
    std::cout << "  " << v.subject << ": " << v.message << "  [" << v.rule << "]\n";
  }
}

}  // namespace

void setup_gate(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<GateOptions>();
  CLI::App* cmd = app.add_subcommand("gate", "Check a project folder; exit 0 only if every rule holds (for CI)");
  cmd->footer(
      "Integrity rules: the ledger's hash chain and its HEAD mirror verify; every artifact file's hash\n"
      "matches the ledger; every render under media/ and every recorded request and answer object\n"
      "matches its recorded hash; no artifact-named file or render the ledger does not know; no\n"
      "version gaps; naming rules; the run-log CSV equals the ledger; avps.json validates.\n"
      "Record rules: every recorded gate verdict equals its skill's gate recomputed on the recorded\n"
      "content and thresholds; every WORLD_STATE is its input with its STATE_DIFF applied; every\n"
      "passing GENPACK holds its locks verbatim; spend within every cap in force. With --require,\n"
      "the production has reached that phase with no hard stop open in its scope (docs/cli.md).\n"
      "Read-only, one consistent snapshot: beside a running `avps run`, writes in progress are not\n"
      "violations.\n"
      "Exit codes: 0 all rules hold, 1 violations (listed with the file or row), 2 an unknown --require\n"
      "phase, 4 not a project.");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->add_option("--expect-head", options->expect_head,
                  "Fail unless this head (SEQ:HASH as a PASS prints it, or HASH) is still an event of the chain: "
                  "a CI job that pinned the last head catches rewritten history");
  cmd->add_option("--require", options->require,
                  "Fail unless the production has reached this phase of the stage graph (e.g. validation, proxy, "
                  "final) with no hard stop open in its scope");
  cmd->add_option("--junit", options->junit,
                  "Also write JUnit XML to this file: one test case per rule and target, failures with their messages");
  cmd->callback([options, &ctx]() { run_gate(*options, ctx); });
}

}  // namespace avps::cli
