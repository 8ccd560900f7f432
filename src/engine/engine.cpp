// The loop engine. Engine::run() walks the stage graph; every step goes through run_jobs(), the
// one loop of DESIGN §4 (prepare → route → reserve → intent → call, many in flight → response →
// schema → gate → commit → loop policy). Production waves (production.cpp) use the same pieces.

#include "avps/engine/engine.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/store.hpp"
#include "avps/builtins/genpack.hpp"
#include "avps/builtins/world_state.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/diag.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/memory.hpp"
#include "avps/gates/integrity.hpp"
#include "avps/governance/brief_estimate.hpp"
#include "avps/governance/override.hpp"
#include "avps/governance/pricing.hpp"
#include "answer.hpp"
#include "engine_impl.hpp"

namespace avps::engine {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool row_mentions(const json& row, const std::string& id) {
  for (const auto& item : row.items()) {
    const json& cell = item.value();
    if ((cell.is_string() && cell == id) ||
        (cell.is_array() && std::find(cell.begin(), cell.end(), json(id)) != cell.end())) {
      return true;
    }
  }
  return false;
}

// A rows artifact's members but its rows (the header a slice of its rows is shown with).
json members_but_rows(const json& artifact) {
  json out = json::object();
  for (auto it = artifact.begin(); artifact.is_object() && it != artifact.end(); ++it) {
    if (it.key() != "rows") {
      out[it.key()] = it.value();
    }
  }
  return out;
}

json rows_where(const json& artifact, const std::string& field, const std::string& value) {
  json out = members_but_rows(artifact);
  json rows = json::array();
  for (const json& row : rows_of(artifact)) {
    if (row.value(field, "") == value) {
      rows.push_back(row);
    }
  }
  out["rows"] = std::move(rows);
  return out;
}

// The canonical JSON text of `value` (the same bytes core::canonical_json gives the value wherever
// it sits in a larger document: keys sorted, no whitespace).
std::string canonical_text(const json& value) {
  Result<std::string> canonical = core::canonical_json(value);
  return canonical ? std::move(*canonical) : value.dump();
}

// Appends `text` as canonical JSON writes a string: as is between quotes when nothing in it needs
// an escape (artifact names never do), else as canonical_text writes it.
void append_json_string(std::string& out, const std::string& text) {
  const bool plain = std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (plain) {
    out += '"';
    out += text;
    out += '"';
  } else {
    out += canonical_text(json(text));
  }
}

// At most `most` items of `items`, spread evenly from the first to the last (DESIGN §1.5: a
// request must not grow with the number of scenes an entity appears in).
constexpr size_t k_max_entity_rows = 8;

json spread(const json& items, size_t most) {
  if (items.size() <= most || most < 2) {
    return items;
  }
  json out = json::array();
  for (size_t k = 0; k < most; ++k) {
    out.push_back(items[k * (items.size() - 1) / (most - 1)]);
  }
  return out;
}

// The loop and the skill a step key names: "skill/KEY[/resolution]" then "@digest", "#wave" or
// "<judge loop".
std::string loop_of_step(const std::string& step_key) { return step_key.substr(0, step_key.find_first_of("@#<")); }
std::string skill_of_step(const std::string& step_key) {
  const std::string loop = loop_of_step(step_key);
  return loop.substr(0, loop.find('/'));
}

}  // namespace

bool passed(const std::string& verdict) {
  return verdict == "PASS" || verdict == "WARN" || verdict == "FIX" || verdict == "ACCEPTED";
}

// ---- reading the record -----------------------------------------------------------------------

// The highest version of kind/target, from the artifact index (kept in step with the ledger by
// refresh_index) rather than a query of the ledger at every read: a step reads dozens.
Result<const ledger::ArtifactRecord*> Impl::latest_indexed(std::string_view kind, std::string_view target) {
  AVPS_TRY(refresh_index());
  std::string key;
  key.reserve(kind.size() + 1 + target.size());
  key.append(kind).append(1, '/').append(target);
  auto versions = versions_by_key.find(key);
  return versions == versions_by_key.end() || versions->second.empty() ? nullptr : &versions->second.back();
}

Result<std::optional<ledger::ArtifactRecord>> Impl::latest_record(const std::string& kind, const std::string& target) {
  AVPS_TRY_ASSIGN(const ledger::ArtifactRecord* found, latest_indexed(kind, target));
  return found ? std::optional<ledger::ArtifactRecord>{*found} : std::nullopt;
}

Result<std::optional<Loaded>> Impl::latest(const std::string& kind, const std::string& target) {
  AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> found, latest_record(kind, target));
  if (!found) {
    return std::optional<Loaded>{};
  }
  AVPS_TRY_ASSIGN(ContentCache::Content content, load(*found));
  return std::optional<Loaded>{Loaded{std::move(content), std::move(*found)}};
}

ContentCache::Content ContentCache::find(const std::string& key) {
  auto it = m_by_key.find(key);
  if (it == m_by_key.end()) {
    return nullptr;
  }
  m_items.splice(m_items.begin(), m_items, it->second);
  return it->second->content;
}

ContentCache::Content ContentCache::insert(const std::string& key, json content) {
  if (Content known = find(key)) {
    return known;
  }
  const size_t bytes = approx_json_bytes(content) + key.size();
  m_items.push_front(Item{key, std::make_shared<const json>(std::move(content)), bytes});
  m_by_key[key] = m_items.begin();
  m_bytes += bytes;
  while (m_items.size() > 1 && (m_items.size() > m_capacity || m_bytes > m_byte_budget)) {
    m_bytes -= m_items.back().bytes;
    m_by_key.erase(m_items.back().key);
    m_items.pop_back();
  }
  return m_items.front().content;
}

size_t approx_json_bytes(const json& value) {
  // libstdc++: a std::string is 32 bytes with 15 characters inline; a map node 32 bytes of links
  // and colour plus its key and value; a vector 24 bytes plus its elements. malloc rounds to 16.
  auto heap_string = [](size_t length) { return length > 15 ? ((length + 16) | 15) + 1 : 0; };
  size_t bytes = sizeof(json);
  switch (value.type()) {
    case json::value_t::string:
      bytes += sizeof(std::string) + heap_string(value.get_ref<const std::string&>().size());
      break;
    case json::value_t::object:
      bytes += sizeof(json::object_t);
      for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
        bytes += 32 + sizeof(std::string) + heap_string(key.size()) + approx_json_bytes(member);
      }
      break;
    case json::value_t::array:
      bytes += sizeof(json::array_t);
      for (const json& item : value) {
        bytes += approx_json_bytes(item);
      }
      break;
    case json::value_t::binary:
      bytes += sizeof(json::binary_t) + value.get_binary().size();
      break;
    default:
      break;
  }
  return bytes;
}

Result<ContentCache::Content> Impl::load(const ledger::ArtifactRecord& artifact) {
  if (ContentCache::Content known = contents.find(artifact.json_sha256)) {
    return known;
  }
  AVPS_TRY_ASSIGN(json content, e.m_project.store().load(artifact));
  return contents.insert(artifact.json_sha256, std::move(content));
}

Result<const governance::RecordedShots*> Impl::recorded_shots() {
  AVPS_TRY(refresh_index());
  if (!recorded_shots_memo || recorded_shots_seq != plan_seq) {
    AVPS_TRY_ASSIGN(governance::RecordedShots read, governance::recorded_shots(latest_json()));
    recorded_shots_memo = std::move(read);
    recorded_shots_seq = plan_seq;
  }
  return &*recorded_shots_memo;
}

Result<const governance::RoutingTable*> Impl::allocation() {
  AVPS_TRY_ASSIGN(const governance::RecordedShots* recorded, recorded_shots());
  if (!allocation_memo || allocation_seq != plan_seq) {
    AVPS_TRY_ASSIGN(governance::RoutingTable table,
                    governance::allocate(e.m_registry.skills(), e.m_router, recorded->shots,
                                         governance::ProjectionSettings::from_config(e.m_project.config()),
                                         governance::k_projection_input_tokens_per_call));
    allocation_memo = std::move(table);
    allocation_seq = plan_seq;
  }
  return &*allocation_memo;
}

// The version of an input a step may read, walking back from the latest past versions that a
// resumed run must not see yet:
//   - a version written by a step later in the walk than the reader (WalkRank): the cost loop
//     before final renders writes the scene's COST_REPORT after the one before proxies read it,
//     and the final QC wave writes a QC_BATCH after the cost loop read the proxy waves'. A step
//     reads the record as its place in the walk left it, so a second run finds it up to date;
//   - an output of this very loop that an interrupted run recorded without finishing its step
//     (regen-analyzer reads the REGEN_RULES it writes): that attempt is re-run from the inputs it
//     had;
//   - an output of another loop whose last step FAILed and has not been acted on (a revision an
//     interruption cut between its failed attempt and the next): downstream work waits for the
//     loop's answer, as it does in an uninterrupted run, instead of building on a rejected version.
const ledger::ArtifactRecord* Impl::version_before(const ledger::ArtifactRecord& artifact) const {
  auto versions = versions_by_key.find(artifact.kind + "/" + artifact.target);
  if (versions == versions_by_key.end()) {
    return nullptr;
  }
  const ledger::ArtifactRecord* before = nullptr;
  for (const ledger::ArtifactRecord& r : versions->second) {
    if (r.version < artifact.version) {
      before = &r;
    }
  }
  return before;
}

WriterFacts Impl::make_writer_facts(const std::string& name) const {
  WriterFacts facts;
  auto writer = record.written_by.find(name);
  if (writer == record.written_by.end()) {
    return facts;
  }
  facts.by_step = true;
  facts.step = writer->second.step;
  facts.written_at = writer_rank(facts.step);
  facts.walk_step = step_index.count(skill_of_step(facts.step)) > 0;
  auto found = record.steps.find(facts.step);
  const std::optional<json> finished = found == record.steps.end() ? std::nullopt : std::optional<json>(*found->second);
  facts.unfinished = !finished || finished->value("attempt", 0) < writer->second.attempt;
  if (facts.unfinished) {
    // Its own loop re-runs it; and no other step reads what an attempt an interruption cut
    // short wrote (BEATS, not yet SCENES) before that attempt is finished: nothing is derived
    // from half of an answer.
    facts.cut_short = record.cut_short.count(name) > 0;
  } else {
    facts.loop = finished->value("loop", "");
    auto last = record.loops.find(facts.loop);
    facts.failed_unanswered = finished->value("verdict", "") == "FAIL" && last != record.loops.end() &&
                              (*last->second).value("step", "") == facts.step && !record.open_stops.count(facts.loop);
  }
  return facts;
}

void Impl::sync_writer_facts() {
  if (writer_facts_generation != record_generation) {
    writer_facts.clear();
    step_generations.clear();
    loop_generations.clear();
    writer_facts_generation = record_generation;
  }
}

Result<const WriterFacts*> Impl::facts_of(const ledger::ArtifactRecord& artifact, WriterFactsMemo** known) {
  sync_writer_facts();
  if (known != nullptr && *known != nullptr && (*known)->holds() && !options.verify_by_name) {
    return &(*known)->facts;
  }
  auto [it, made] = writer_facts.try_emplace(artifact.name);
  WriterFactsMemo& memo = it->second;
  if (made || !memo.holds()) {
    memo.facts = make_writer_facts(artifact.name);
    // The generations' entries are made here if none: a memo reads them through its pointers.
    memo.step_now = &step_generations.try_emplace(memo.facts.step, 0).first->second;
    memo.loop_now = &loop_generations.try_emplace(memo.facts.loop, 0).first->second;
    memo.step_generation = *memo.step_now;
    memo.loop_generation = *memo.loop_now;
    memo.written_since = false;
  } else if (options.verify_by_name && memo.facts != make_writer_facts(artifact.name)) {
    return make_error(ErrorCode::corruption, "the walk's memo of who wrote " + artifact.name +
                                                 " (Impl::writer_facts) no longer matches the record: a change of "
                                                 "the record did not say so (step_changed, loop_changed)");
  }
  if (known != nullptr) {
    *known = &memo;
  }
  return &memo.facts;
}

Result<std::optional<ledger::ArtifactRecord>> Impl::readable_version(ledger::ArtifactRecord artifact,
                                                                    const std::string& reader_loop,
                                                                    const std::optional<WalkRank>& reader) {
  AVPS_TRY_ASSIGN(const ledger::ArtifactRecord* readable, readable_record(artifact, reader_loop, reader));
  if (readable == nullptr) {
    return std::optional<ledger::ArtifactRecord>{};
  }
  return std::optional<ledger::ArtifactRecord>{readable == &artifact ? std::move(artifact) : *readable};
}

Result<const ledger::ArtifactRecord*> Impl::readable_record(const ledger::ArtifactRecord& artifact,
                                                             const std::string& reader_loop,
                                                             const std::optional<WalkRank>& reader) {
  sync_writer_facts();
  const ledger::ArtifactRecord* version = &artifact;
  for (;;) {
    AVPS_TRY_ASSIGN(const WriterFacts* facts, facts_of(*version));
    if (!facts->hidden_from(reader_loop, reader)) {
      return version;
    }
    AVPS_TRY(refresh_index());
    version = version_before(*version);
    if (version == nullptr) {
      return version;
    }
  }
}

Result<TargetVersions*> Impl::latest_of_every_target(const std::string& kind) {
  AVPS_TRY(refresh_index());
  TargetVersions& targets = target_versions[kind];
  auto moved = kind_index_seq.find(kind);
  const int64_t kind_seq = moved == kind_index_seq.end() ? -1 : moved->second;
  if (targets.kind_seq != kind_seq || targets.record_generation != record_generation) {
    targets.entries.clear();
    targets.last_read.reset();
    const std::string prefix = kind + "/";
    for (auto it = versions_by_key.lower_bound(prefix);
         it != versions_by_key.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      if (it->second.empty()) {
        continue;
      }
      TargetVersions::Entry& entry = targets.entries.emplace_back();
      for (auto version = it->second.rbegin(); version != it->second.rend(); ++version) {
        entry.versions.push_back({&*version});
      }
    }
    targets.kind_seq = kind_seq;
    targets.record_generation = record_generation;
  }
  return &targets;
}

Result<TargetVersions::Readable*> Impl::readable_of_every_target(const std::string& kind,
                                                                         const std::string& reader_loop,
                                                                         const std::optional<WalkRank>& reader) {
  AVPS_TRY_ASSIGN(TargetVersions * targets, latest_of_every_target(kind));
  std::optional<TargetVersions::Readable>& last = targets->last_read;
  sync_writer_facts();
  if (last && last->facts_generation == generation && last->reader_loop == reader_loop && last->reader == reader &&
      !options.verify_by_name) {
    return &*last;
  }
  std::vector<const ledger::ArtifactRecord*> records;
  records.reserve(targets->entries.size());
  for (const TargetVersions::Entry& entry : targets->entries) {
    for (const TargetVersions::Version& version : entry.versions) {
      // Its writer facts from the memo the version keeps while that holds (facts_of).
      AVPS_TRY_ASSIGN(const WriterFacts* facts, facts_of(*version.record, &version.facts));
      if (!facts->hidden_from(reader_loop, reader)) {
        records.push_back(version.record);
        break;
      }
    }
  }
  const bool same_versions = last && last->records == records;
  if (options.verify_by_name && !same_versions && last && last->facts_generation == generation &&
      last->reader_loop == reader_loop && last->reader == reader) {
    return make_error(ErrorCode::corruption, "the walk's memo of the " + kind + " versions a step of " + reader_loop +
                                                 " reads (Impl::readable_of_every_target) no longer matches the "
                                                 "record: a change of the writer facts did not say so");
  }
  if (same_versions) {
    last->reader_loop = reader_loop;
    last->reader = reader;
    last->facts_generation = generation;
    return &*last;
  }
  TargetVersions::Readable readable{reader_loop, reader, generation, std::move(records), "[", nullptr};
  for (const ledger::ArtifactRecord* version : readable.records) {
    if (readable.names_text.size() > 1) {
      readable.names_text += ',';
    }
    append_json_string(readable.names_text, version->name);
  }
  readable.names_text += ']';
  last = std::move(readable);
  return &*last;
}

Result<std::string> Impl::list_fingerprint(const std::string& list_key,
                                           const std::vector<const ledger::ArtifactRecord*>& records,
                                           const std::vector<std::string>& fields) {
  ListDigest& last = list_digests[list_key];
  size_t shared = 0;
  while (shared < records.size() && shared < last.elements.size() &&
         last.elements[shared] == records[shared]->json_sha256) {
    ++shared;
  }
  last.elements.resize(shared);
  last.after.resize(shared);
  core::Sha256 hash;
  if (shared > 0) {
    hash = last.after.back().fork();
  } else {
    hash.update("[");
  }
  for (size_t i = shared; i < records.size(); ++i) {
    // The element's canonical JSON as the whole list's canonical JSON holds it: cut to the fields
    // and without its gate (cut_to_fields and without_gate work element by element).
    Result<ContentCache::Content> content = load(*records[i]);
    if (!content) {
      list_digests.erase(list_key);
      return content.error();
    }
    Result<std::string> canonical = core::canonical_json(without_gate(cut_copy(**content, fields)));
    if (!canonical) {
      list_digests.erase(list_key);
      return canonical.error();
    }
    if (i > 0) {
      hash.update(",");
    }
    hash.update(*canonical);
    last.elements.push_back(records[i]->json_sha256);
    last.after.push_back(hash.fork());
  }
  hash.update("]");
  return hash.hex();
}

Result<std::optional<Loaded>> Impl::input_version(std::optional<Loaded> loaded, const std::string& reader_loop,
                                                  const std::optional<WalkRank>& reader) {
  if (!loaded) {
    return loaded;
  }
  AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> readable,
                  readable_version(loaded->record, reader_loop, reader));
  if (!readable) {
    return std::optional<Loaded>{};
  }
  if (readable->name == loaded->record.name) {
    return loaded;
  }
  return by_name(readable->name);  // only the version read is loaded (and verified)
}

const ledger::ArtifactRecord* Impl::indexed(const std::string& name) const {
  auto it = index_by_name.find(name);
  if (it == index_by_name.end()) {
    return nullptr;
  }
  // The last of the list with that version (the one refresh_index indexed last by that name).
  const std::vector<ledger::ArtifactRecord>& versions = *it->second.versions;
  auto after = std::upper_bound(versions.begin(), versions.end(), it->second.version,
                                [](int version, const ledger::ArtifactRecord& r) { return version < r.version; });
  return after == versions.begin() || std::prev(after)->version != it->second.version ? nullptr : &*std::prev(after);
}

Result<std::optional<Loaded>> Impl::by_name(const std::string& name) {
  AVPS_TRY(refresh_index());
  const ledger::ArtifactRecord* found = indexed(name);
  if (found == nullptr) {
    return std::optional<Loaded>{};
  }
  AVPS_TRY_ASSIGN(ContentCache::Content content, load(*found));
  return std::optional<Loaded>{Loaded{std::move(content), *found}};
}

std::function<Result<json>()> Impl::named_contents(std::shared_ptr<const std::vector<std::string>> names,
                                                  std::vector<std::string> fields, bool as_list) {
  return [this, names = std::move(names), fields = std::move(fields), as_list]() -> Result<json> {
    // Each version cut as it is copied (cut_to_fields and without_gate work element by element),
    // not its whole content copied first, then cut.
    json list = json::array();
    for (const std::string& name : *names) {
      AVPS_TRY_ASSIGN(std::optional<Loaded> loaded, by_name(name));
      if (!loaded) {
        return make_error(ErrorCode::not_found, name + " is not recorded");
      }
      list.push_back(without_gate(cut_copy(loaded->content(), fields)));
    }
    if (!as_list) {
      assert(list.size() == 1);
      return std::move(list[0]);
    }
    return list;
  };
}

// The artifact index, kept in step with the ledger by reading only what was recorded since.
Result<void> Impl::refresh_index() {
  const int64_t head = e.m_project.ledger().head().seq;
  if (head == index_seq) {
    return ok();
  }
  AVPS_TRY_ASSIGN(std::vector<ledger::ArtifactRecord> records,
                  e.m_project.ledger().artifacts(std::max<int64_t>(index_seq, 0)));
  for (ledger::ArtifactRecord& r : records) {
    if (r.kind == "SCENES" || r.kind == "SHOTLIST" || r.kind == "ROUTING_DECISION") {
      plan_seq = r.event_seq;
    }
    std::vector<ledger::ArtifactRecord>& list = versions_by_key[r.kind + "/" + r.target];
    kind_index_seq[r.kind] = r.event_seq;
    index_by_name[r.name] = IndexedName{&list, r.version};
    list.push_back(std::move(r));
    // Versions of one artifact are recorded in order; keep the list sorted if one was not.
    if (list.size() >= 2 && list[list.size() - 2].version > list.back().version) {
      std::sort(list.begin(), list.end(),
                [](const ledger::ArtifactRecord& a, const ledger::ArtifactRecord& b) { return a.version < b.version; });
    }
  }
  index_seq = head;
  return ok();
}

Result<std::vector<Loaded>> Impl::all_versions(const std::string& kind, const std::string& target) {
  AVPS_TRY(refresh_index());
  std::vector<Loaded> out;
  auto it = versions_by_key.find(kind + "/" + target);
  if (it != versions_by_key.end()) {
    for (const ledger::ArtifactRecord& r : it->second) {
      AVPS_TRY_ASSIGN(ContentCache::Content content, load(r));
      out.push_back(Loaded{std::move(content), r});
    }
  }
  return out;
}

const std::vector<const json*>& Impl::rows_with(const std::string& kind, const ContentCache::Content& content,
                                                const char* field, const std::string& value) {
  RowIndex& index = row_indexes[kind + "/" + field];
  if (index.content != content) {
    index.content = content;
    index.rows.clear();
    for (const json& row : rows_of(*content)) {
      index.rows[row.value(field, "")].push_back(&row);
    }
  }
  static const std::vector<const json*> k_none;
  auto rows = index.rows.find(value);
  return rows == index.rows.end() ? k_none : rows->second;
}

Result<RowRef> Impl::scene_row_ref(const std::string& scene) {
  AVPS_TRY_ASSIGN(auto loaded, latest("SCENES", ""));
  if (!loaded) {
    return RowRef{};
  }
  const std::vector<const json*>& rows = rows_with("SCENES", loaded->data, "scene_id", scene);
  return rows.empty() ? RowRef{} : RowRef{loaded->data, rows.front()};
}

Result<RowRef> Impl::shot_row_ref(const Context& context) {
  AVPS_TRY_ASSIGN(auto shotlist, latest("SHOTLIST", context.scene_id));
  if (!shotlist) {
    return RowRef{};
  }
  for (const json& row : rows_of(shotlist->content())) {
    if (row.value("shot_id", "") == context.shot_id) {
      return RowRef{shotlist->data, &row};
    }
  }
  return RowRef{};
}

Result<std::optional<json>> Impl::scene_row(const std::string& scene) {
  AVPS_TRY_ASSIGN(RowRef row, scene_row_ref(scene));
  return row ? std::optional<json>{*row} : std::optional<json>{};
}

Result<std::optional<json>> Impl::shot_row(const Context& context) {
  AVPS_TRY_ASSIGN(RowRef row, shot_row_ref(context));
  return row ? std::optional<json>{*row} : std::optional<json>{};
}

Result<std::vector<std::string>> Impl::present_characters(const Context& context) {
  std::vector<std::string> ids;
  RowRef row;
  if (!context.shot_id.empty()) {
    AVPS_TRY_ASSIGN(row, shot_row_ref(context));
  } else {
    AVPS_TRY_ASSIGN(row, scene_row_ref(context.scene_id));
  }
  if (!row) {
    return ids;
  }
  // Read in place (as row.value(member, json::array()) would give it, without the copy).
  auto list = row->find(context.shot_id.empty() ? "characters_present" : "char_ids");
  if (list == row->end()) {
    return ids;
  }
  for (const json& id : *list) {
    if (id.is_string()) {
      ids.push_back(id.get<std::string>());
    }
  }
  return ids;
}

Result<std::string> Impl::present_set(const Context& context) {
  if (!context.shot_id.empty()) {
    AVPS_TRY_ASSIGN(RowRef row, shot_row_ref(context));
    return row ? row->value("set_id", std::string()) : std::string();
  }
  AVPS_TRY_ASSIGN(RowRef row, scene_row_ref(context.scene_id));
  return row ? row->value("location", std::string()) : std::string();
}

// WORLD_STATE before a scene: the initial state for the first scene, else the state the previous
// scene's world-state-tracker wrote last.
Result<std::optional<ledger::ArtifactRecord>> Impl::world_before_record(const std::string& scene) {
  AVPS_TRY(refresh_index());
  auto at = std::find(scenes.begin(), scenes.end(), scene);
  if (at == scenes.end() || at == scenes.begin()) {
    auto initial = versions_by_key.find("WORLD_STATE/");
    if (initial == versions_by_key.end() || initial->second.empty()) {
      return std::optional<ledger::ArtifactRecord>{};
    }
    return std::optional<ledger::ArtifactRecord>{initial->second.front()};
  }
  auto written = record.world_after.find(*(at - 1));
  if (written == record.world_after.end()) {
    return std::optional<ledger::ArtifactRecord>{};
  }
  const ledger::ArtifactRecord* named = indexed(written->second);
  if (named == nullptr) {
    return std::optional<ledger::ArtifactRecord>{};
  }
  return std::optional<ledger::ArtifactRecord>{*named};
}

Result<std::optional<Loaded>> Impl::world_before(const std::string& scene) {
  AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> version, world_before_record(scene));
  if (!version) {
    return std::optional<Loaded>{};
  }
  AVPS_TRY_ASSIGN(ContentCache::Content content, load(*version));
  return std::optional<Loaded>{Loaded{std::move(content), *version}};
}

Result<bool> Impl::condition(const std::string& name, const Context& context) {
  if (name.empty()) {
    return true;
  }
  if (name == "scene_fact_dependent" || name == "scene_flagged_cultural") {
    AVPS_TRY_ASSIGN(auto breakdown, latest("BREAKDOWN", ""));
    const std::string prefix = name == "scene_fact_dependent" ? "research:" : "cultural:";
    if (breakdown) {
      for (const json* scene_row : rows_with("BREAKDOWN", breakdown->data, "scene_id", context.scene_id)) {
        const json& row = *scene_row;
        for (const json& risk : row.value("continuity_risks", json::array())) {
          std::string text = risk.is_string() ? risk.get<std::string>() : "";
          std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
          if (text.rfind(prefix, 0) == 0) {
            return true;
          }
        }
      }
    }
    return false;
  }
  if (name == "scene_has_dialogue") {
    AVPS_TRY_ASSIGN(std::vector<std::string> ids, present_characters(context));
    for (const std::string& id : ids) {
      AVPS_TRY_ASSIGN(auto voice, latest("VOICE_LOCK", id));
      if (voice) {
        return true;
      }
    }
    return false;
  }
  if (name == "regen_risk_medium_or_high") {
    AVPS_TRY_ASSIGN(auto row, shot_row(context));
    std::string risk = row ? row->value("regen_risk_estimate", "") : "";
    return risk == "medium" || risk == "high";
  }
  return make_error(ErrorCode::configuration, "the stage graph's condition \"" + name + "\" is not known to this engine");
}


const std::string& Impl::role(const std::string& part) const {
  static const std::string k_none;
  const skills::StageGraph* graph = e.m_registry.stage_graph();
  return graph ? graph->role(part) : k_none;
}

std::string Impl::regen_skill(const char* key) const {
  const skills::StageGraph* graph = e.m_registry.stage_graph();
  return graph ? graph->regen.value(key, "") : "";
}

int Impl::regen_number(const std::string& setting, const std::string& hero) const {
  const skills::StageGraph* graph = e.m_registry.stage_graph();
  const json none = json::object();
  const json& regen = graph ? graph->regen : none;
  json rule = regen.value(setting, json::object());
  if (!hero.empty()) {
    rule = rule.value(hero, json::object());
  }
  const std::string pointer = rule.value("config", "");
  const int fallback = rule.value("default", 0);
  return pointer.rfind('/', 0) == 0 ? config_int(e.m_project.config().document, pointer.c_str(), fallback) : fallback;
}

bool Impl::regen_remedy(const char* remedy) const {
  const skills::StageGraph* graph = e.m_registry.stage_graph();
  if (!graph || !graph->regen.contains("remedies") || !graph->regen["remedies"].is_array()) {
    return true;
  }
  const json& remedies = graph->regen["remedies"];
  return std::find(remedies.begin(), remedies.end(), json(remedy)) != remedies.end();
}

WalkRank Impl::rank_of(const std::string& skill, const Context& context) const {
  int position = std::numeric_limits<int>::max();  // a skill outside the graph: production's on-demand steps
  if (auto at = graph_step_index.find(context.graph_step); !context.graph_step.empty() && at != graph_step_index.end()) {
    position = at->second;
  } else if (auto res = resolution_step_index.find(skill + "/" + context.resolution);
             !context.resolution.empty() && res != resolution_step_index.end()) {
    position = res->second;
  } else if (auto first = step_index.find(skill); first != step_index.end()) {
    position = first->second;
  } else if (auto phase_end = resolution_step_index.find("/" + context.resolution);
             !context.resolution.empty() && phase_end != resolution_step_index.end()) {
    position = phase_end->second;  // an on-demand skill (regen-analyzer) runs inside that phase's waves
  }
  WalkRank rank;
  rank.position = position;
  rank.group = position < static_cast<int>(group_at.size()) ? group_at[position] : 2;
  if (rank.group > 0) {
    auto scene = scene_order.find(context.scene_id);
    rank.scene = scene == scene_order.end() ? -1 : scene->second;
  }
  return rank;
}

std::optional<WalkRank> Impl::writer_rank(const std::string& step_key) const {
  const std::string loop = loop_of_step(step_key);
  const size_t slash = loop.find('/');
  const std::string skill = loop.substr(0, slash);
  if (!step_index.count(skill) && !e.m_registry.find(skill)) {
    return std::nullopt;
  }
  Context context;
  if (slash != std::string::npos) {
    const std::string rest = loop.substr(slash + 1);
    const size_t second = rest.find('/');
    const std::string key = rest.substr(0, second);
    context.resolution = second == std::string::npos ? "" : rest.substr(second + 1);
    if (artifacts::is_shot_id(key)) {
      context.scene_id = key.substr(0, key.find("_SH"));
    } else if (artifacts::is_scene_id(key)) {
      context.scene_id = key;
    }
  }
  if (auto finished = record.steps.find(step_key); finished != record.steps.end()) {
    context.graph_step = (*finished->second).value("graph_step", "");
  }
  WalkRank rank = rank_of(skill, context);
  // A revision a shot's loop asked for (the simplify remedy's re-plan: "shot-planner/S01<qc-grader/
  // S01_SH02/proxy") is written inside that scene's production, where it starts in the walk: the
  // cost loop before it read the plan as it was (a second run finds it up to date), and every
  // production step after it, proxies included, reads the revised plan.
  if (const size_t judge = step_key.find('<');
      judge != std::string::npos && production_start >= 0 && !context.scene_id.empty()) {
    const std::string judge_loop = step_key.substr(judge + 1);
    if (std::count(judge_loop.begin(), judge_loop.end(), '/') >= 2) {  // skill/SHOT/resolution
      WalkRank inside;
      inside.position = production_start;
      inside.group = production_start < static_cast<int>(group_at.size()) ? group_at[production_start] : 2;
      auto scene = scene_order.find(context.scene_id);
      inside.scene = scene == scene_order.end() ? -1 : scene->second;
      rank = std::max(rank, inside);
    }
  }
  return rank;
}

void Impl::index_graph(const skills::StageGraph& graph) {
  int production = -1;
  std::vector<skills::PlannedStep> steps = skills::flatten(graph, e.m_registry.skills());
  const std::vector<int> groups = graph.walk_passes();
  std::map<std::string, std::pair<int, std::string>> phases;  // name -> group, resolution
  for (size_t p = 0; p < graph.phases.size(); ++p) {
    phases[graph.phases[p].name] = {groups[p], graph.phases[p].resolution};
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const int at = static_cast<int>(i);
    graph_step_index.emplace(steps[i].id, at);
    const auto& [group, resolution] = phases[steps[i].phase];
    group_at.push_back(group);
    if (!resolution.empty() && !steps[i].skill.empty()) {
      resolution_step_index.emplace(steps[i].skill + "/" + resolution, at);
    }
    if (!resolution.empty()) {
      resolution_step_index["/" + resolution] = at;  // the phase's last step
    }
    if (!steps[i].skill.empty()) {
      step_index.emplace(steps[i].skill, at);
    }
    for (const std::string& kind : steps[i].outputs) {
      producer_index.emplace(kind, at);
    }
    if (production < 0 && steps[i].fan_out == "per_shot") {
      production = at;
    }
  }
  production_start = production;
  record_changed();  // the walk's ranks (writer_rank) are read from this index
  // On-demand skills (regen-analyzer) write during production.
  for (const skills::OnDemandSkill& d : graph.on_demand) {
    if (const skills::SkillDef* skill = e.m_registry.find(d.skill)) {
      for (const skills::SkillOutput& output : skill->outputs) {
        producer_index.emplace(output.kind, production);
      }
    }
  }
}

// An optional input written only by a later step is circular (DESIGN §3: "if present"): reading
// it once it exists would make every run after the first re-derive the step. It is not read. A
// skill's later step in the graph (context.graph_step) reads what the steps before it wrote.
bool Impl::circular(const skills::SkillDef& skill, const Context& context, const skills::SkillInput& input) const {
  if (input.required) {
    return false;
  }
  const std::map<std::string, int>& positions = context.graph_step.empty() ? step_index : graph_step_index;
  auto consumer = positions.find(context.graph_step.empty() ? skill.name : context.graph_step);
  if (consumer == positions.end()) {
    return false;
  }
  std::string kind = input.kind;
  int producer = -1;
  if (kind == "WORLD_STATE" && (input.slice == "before_scene" || input.slice == "after_scene")) {
    auto tracker = step_index.find(role("world_state"));
    producer = tracker == step_index.end() ? -1 : tracker->second;
  } else if (auto it = producer_index.find(kind); it != producer_index.end()) {
    producer = it->second;
  }
  return producer > consumer->second;
}

// The inputs a skill takes now in `context`, each cut to its slice, with fingerprints; and, in
// either mode, what each input is made from by name (Gathered::by_name): the artifact versions it
// reads (immutable), the ids and rows the context picks, the brief's hash, the render's record. In
// GatherMode::names nothing is loaded, cut or fingerprinted. Both modes resolve every version
// alike (input_record), so equal names mean equal contents, and so equal fingerprints.
Result<Gathered> Impl::gather(const skills::SkillDef& skill, const Context& context, GatherMode mode) {
  Gathered g;
  const bool contents_too = mode != GatherMode::names;
  const std::string reader_loop = loop_key(skill, context);
  const WalkRank rank = rank_of(skill.name, context);
  const skills::SkillInput* reading = nullptr;  // the input being gathered: its fields cut what is read
  // A feedback input (the analyzer's REGEN_RULES for the next GenPack) is written later in the
  // walk by design: every version of it is readable.
  auto reader = [&] { return reading && reading->feedback ? std::nullopt : std::optional<WalkRank>(rank); };
  // The version of `kind` and `target` this step reads: the latest, walked back by the record
  // (readable_record), by the index alone. In the index, not copied: the index does not move
  // while a step is gathered (no event is appended), so the record stays where it is.
  auto input_record = [&](const std::string& kind,
                          const std::string& target) -> Result<const ledger::ArtifactRecord*> {
    AVPS_TRY_ASSIGN(const ledger::ArtifactRecord* latest, latest_indexed(kind, target));
    if (latest == nullptr) {
      return nullptr;
    }
    return readable_record(*latest, reader_loop, reader());
  };
  auto load_input = [&](const ledger::ArtifactRecord& r) -> Result<Loaded> {
    AVPS_TRY_ASSIGN(ContentCache::Content content, load(r));
    return Loaded{std::move(content), r};
  };
  // What the input being gathered is made from, by name: an entry [kind, slice, fields,
  // required, feedback, made_from] of Gathered::by_name, written as canonical JSON text.
  auto by_name_text = [&](const std::string& made_from) {
    if (mode == GatherMode::identity) {
      return;  // a render's identity is made from the contents' fingerprints alone
    }
    std::string entry = canonical_text(
        json::array({reading->kind, reading->slice, reading->fields, reading->required, reading->feedback}));
    entry.pop_back();  // the closing bracket: made_from follows
    entry += ',';
    entry += made_from;
    entry += ']';
    g.by_name.pop_back();  // the list's closing bracket
    if (g.by_name.size() > 1) {
      g.by_name += ',';
    }
    g.by_name += entry;
    g.by_name += ']';
  };
  auto by_name = [&](const json& made_from) {
    if (mode != GatherMode::identity) {
      by_name_text(canonical_text(made_from));
    }
  };
  auto fingerprint = [](const json& value) {
    Result<std::string> canonical = core::canonical_json(value);
    return core::sha256_hex(canonical ? *canonical : value.dump());
  };
  auto add = [&](const std::string& kind, json value, std::vector<std::string> names) {
    value = without_gate(cut_to_fields(std::move(value), reading->fields));
    g.fingerprints.push_back({{"kind", kind}, {"names", names}, {"sha256", fingerprint(value)}});
    g.deferred.erase(kind);
    g.cut[kind] = std::move(value);
  };
  // An input that is the named artifacts' contents as they are, no row picked for the context:
  // its value and fingerprint are the same wherever it is read, so they are made once per state
  // of those artifacts (`pure_inputs`), not once per step that reads them (the allocation reads
  // every scene's SHOTLIST in every scene's cost loop).
  auto pure_key = [&](const std::string& kind, const std::vector<std::string>& names) {
    // The slice too: one lock read alone (`latest`) and as the list of those present
    // (`present_characters`) has the same kind, fields and names, and another value.
    std::string key = kind + '\n' + reading->slice;
    for (const std::vector<std::string>* list : {&reading->fields, &names}) {
      key += '\n';
      for (const std::string& item : *list) {
        key += item + '\t';
      }
    }
    return key;
  };
  // Its fingerprint is kept, not its value: the value is made again from the named versions by a
  // step that reads it (Gathered::inputs, through named_contents), so the cache holds no second
  // copy of what `contents` holds (at 500 scenes the BREAKDOWN and SCENES, a row per scene, kept
  // whole: 7 MB of the walk's peak heap). `as_list`: the value is the list of the named versions
  // (present_characters), else the one version named.
  auto add_pure = [&](const std::string& kind, const std::vector<std::string>& names, bool as_list,
                      const std::function<Result<json>()>& make) -> Result<void> {
    const std::string key = pure_key(kind, names);
    ContentCache::Content known = pure_inputs.find(key);
    if (!known) {
      AVPS_TRY_ASSIGN(json made, make());
      known = pure_inputs.insert(key, json{{"sha256", fingerprint(without_gate(cut_to_fields(std::move(made),
                                                                                             reading->fields)))}});
    }
    g.fingerprints.push_back({{"kind", kind}, {"names", names}, {"sha256", known->at("sha256")}});
    g.cut.erase(kind);
    g.deferred[kind] = named_contents(std::make_shared<const std::vector<std::string>>(names), reading->fields,
                                      as_list);
    return ok();
  };
  for (const skills::SkillInput& input : skill.inputs) {
    const std::string& kind = input.kind;
    const std::string& slice = input.slice;
    reading = &input;
    bool found = false;
    if (mode == GatherMode::identity && input.feedback && !input.required) {
      continue;  // not part of a render's identity, and its absence would stop nothing
    }
    if (circular(skill, context, input)) {
      by_name("circular");
      continue;
    }
    if (kind == "BRIEF") {
      // (Its UTF-8 was checked when the run started: run_production.)
      Result<std::string> brief = core::read_file(e.m_project.config().brief);
      by_name(brief ? json(core::sha256_hex(*brief)) : json(nullptr));
      if (brief) {
        if (contents_too) {
          add("BRIEF", *brief, {"BRIEF"});
        }
        found = true;
      }
    } else if (kind == "MEDIA") {
      auto media = record.media.find(context.shot_id + "/" + context.resolution);
      if (media != record.media.end()) {
        // What the grader sees of the render (never the event's bookkeeping: run ids, times).
        const json m = *media->second;
        json descriptor = {{"shot_id", m.value("shot_id", "")},   {"resolution", m.value("resolution", "")},
                           {"attempt", m.value("attempt", 0)},     {"path", m.value("path", "")},
                           {"sha256", m.value("sha256", "")},      {"model", m.value("model", "")}};
        by_name(descriptor);
        if (contents_too) {
          add("MEDIA", descriptor, {m.value("path", "")});
          g.shown.push_back({e.m_project.dir() / m.value("path", ""),
                             m.value("shot_id", "") + " " + m.value("resolution", "") + " render, attempt " +
                                 std::to_string(m.value("attempt", 0))});
        }
        found = true;
      } else {
        by_name(nullptr);
      }
    } else if (slice == "entity_scenes") {
      // Circular by design (DESIGN §3): a lock comes before the per-scene work that would feed it,
      // so a lock never reads PSYCH or CULTURE, and a lock is not made stale by them.
    } else if (slice == "latest" || slice == "all_rows" || slice == "same_entity") {
      std::string target = slice == "all_rows" ? "" : target_for(kind, context);
      AVPS_TRY_ASSIGN(auto version, input_record(kind, target));
      if (!version && artifacts::find_kind(kind) &&
          artifacts::find_kind(kind)->target == artifacts::TargetKind::target && target != "PROJECT") {
        AVPS_TRY_ASSIGN(version, input_record(kind, "PROJECT"));
      }
      by_name(version ? json(version->name) : json(nullptr));
      if (version) {
        if (contents_too) {
          AVPS_TRY(add_pure(kind, {version->name}, false, [&]() -> Result<json> {
            AVPS_TRY_ASSIGN(Loaded loaded, load_input(*version));
            return loaded.content();
          }));
          if (const artifacts::KindInfo* info = artifacts::find_kind(kind); info && info->extension == "png") {
            g.shown.push_back({e.m_project.dir() / version->path, version->name});  // a storyboard frame
          }
        }
        found = true;
      }
    } else if (slice == "entity_rows" || slice == "scene_row") {
      AVPS_TRY_ASSIGN(auto version, input_record(kind, ""));
      // The rows picked are the context's (its ids are part of the key by name).
      by_name(version ? json(version->name) : json(nullptr));
      if (version && contents_too) {
        // The rows picked from the shared content, not from a copy of it: every scene's steps read
        // their scene's row of SCENES and BREAKDOWN, which have a row per scene (or more).
        AVPS_TRY_ASSIGN(Loaded loaded, load_input(*version));
        json value = members_but_rows(loaded.content());
        json rows = json::array();
        if (slice == "entity_rows") {
          for (const json& row : rows_of(loaded.content())) {
            if (row_mentions(row, context.entity_id)) {
              rows.push_back(row);
            }
          }
          rows = spread(rows, k_max_entity_rows);
        } else {
          for (const json* row : rows_with(kind, loaded.data, "scene_id", context.scene_id)) {
            rows.push_back(*row);
          }
        }
        value["rows"] = std::move(rows);
        found = !value["rows"].empty() || slice == "entity_rows";
        if (found) {
          add(kind, value, {version->name});
        }
      } else if (version) {
        found = true;  // by name: whether the rows are there is the contents' to say
      }
    } else if (slice == "shot_row") {
      AVPS_TRY_ASSIGN(auto version, input_record(kind, context.scene_id));
      by_name(version ? json(version->name) : json(nullptr));
      if (version && contents_too) {
        AVPS_TRY_ASSIGN(Loaded loaded, load_input(*version));
        json value = rows_where(loaded.content(), "shot_id", context.shot_id);
        found = !value["rows"].empty();
        if (found) {
          add(kind, value, {version->name});
        }
      } else if (version) {
        found = true;
      }
    } else if (slice == "present_characters" || slice == "present_voices") {
      AVPS_TRY_ASSIGN(std::vector<std::string> ids, present_characters(context));
      std::vector<const ledger::ArtifactRecord*> locks;
      std::vector<std::string> names;
      bool complete = true;
      for (const std::string& id : ids) {
        AVPS_TRY_ASSIGN(auto version, input_record(kind, id));
        if (version) {
          names.push_back(version->name);
          locks.push_back(version);
        } else if (slice == "present_characters") {
          complete = false;
        }
      }
      by_name({{"ids", ids}, {"names", names}});
      found = complete;  // a shot with no one in frame (an insert) needs no character lock
      if (found && contents_too) {
        AVPS_TRY(add_pure(kind, names, true, [&]() -> Result<json> {
          json list = json::array();
          for (const ledger::ArtifactRecord* lock : locks) {
            AVPS_TRY_ASSIGN(Loaded loaded, load_input(*lock));
            list.push_back(loaded.content());
          }
          return list;
        }));
      }
    } else if (slice == "present_set") {
      AVPS_TRY_ASSIGN(std::string set, present_set(context));
      AVPS_TRY_ASSIGN(auto version, input_record(kind, set));
      by_name({{"set", set}, {"name", version ? json(version->name) : json(nullptr)}});
      if (version) {
        if (contents_too) {
          AVPS_TRY(add_pure(kind, {version->name}, false, [&]() -> Result<json> {
            AVPS_TRY_ASSIGN(Loaded loaded, load_input(*version));
            return loaded.content();
          }));
        }
        found = true;
      }
    } else if (slice == "all_targets") {
      // Every target's readable version, known by name from the index: the contents are loaded
      // only when this set of versions was not cut and fingerprinted before (a step known to be up
      // to date reads none of them; at 500 scenes that is most of what a resume read).
      // Each target's readable version (readable_of_every_target) is kept for the reader while no
      // writer fact changed: a step's gather by name and its gather whole make it once. Each scene's
      // cost loops read every scene's versions, at a comparison each, with no copy of a record.
      AVPS_TRY_ASSIGN(TargetVersions::Readable * readable, readable_of_every_target(kind, reader_loop, reader()));
      const std::vector<const ledger::ArtifactRecord*>& all = readable->records;
      if (contents_too && !readable->names) {
        auto made = std::make_shared<std::vector<std::string>>();
        made->reserve(all.size());
        for (const ledger::ArtifactRecord* r : all) {
          made->push_back(r->name);
        }
        readable->names = std::move(made);
      }
      by_name_text(readable->names_text);
      if (!all.empty()) {
        if (contents_too) {
          // The versions' names, shared with the list made later (g.deferred).
          const std::shared_ptr<const std::vector<std::string>> shared_names = readable->names;
          const std::vector<std::string>& names = *shared_names;
          // The fingerprint by element (list_fingerprint), kept by the names like a pure input's;
          // the list itself made only for a step that reads it (Gathered::inputs).
          const std::string key = pure_key(kind, names);
          ContentCache::Content known = pure_inputs.find(key);
          if (!known) {
            AVPS_TRY_ASSIGN(std::string sha, list_fingerprint(pure_key(kind, {}), all, reading->fields));
            if (options.verify_by_name) {
              // The digest by element against the digest of the list made whole.
              json list = json::array();
              for (const ledger::ArtifactRecord* r : all) {
                AVPS_TRY_ASSIGN(ContentCache::Content content, load(*r));
                list.push_back(*content);
              }
              if (fingerprint(without_gate(cut_to_fields(std::move(list), reading->fields))) != sha) {
                return make_error(ErrorCode::corruption, "the fingerprint of " + skill.name + "'s " + kind +
                                                             " list made by element (Impl::list_fingerprint) is not "
                                                             "the digest of the list made whole");
              }
            }
            known = pure_inputs.insert(key, json{{"sha256", std::move(sha)}});
          }
          g.fingerprints.push_back({{"kind", kind}, {"names", names}, {"sha256", known->at("sha256")}});
          g.cut.erase(kind);
          g.deferred[kind] = named_contents(shared_names, reading->fields, true);
        }
        found = true;
      }
    } else if (slice == "before_scene" || slice == "after_scene") {
      std::optional<ledger::ArtifactRecord> version;
      if (slice == "before_scene") {
        AVPS_TRY_ASSIGN(version, world_before_record(context.scene_id));
      } else if (auto it = record.world_after.find(context.scene_id); it != record.world_after.end()) {
        AVPS_TRY(refresh_index());
        if (const ledger::ArtifactRecord* named = indexed(it->second)) {
          version = *named;
        }
      }
      by_name(version ? json(version->name) : json(nullptr));
      if (version) {
        if (slice == "before_scene" && mode == GatherMode::contents) {
          AVPS_TRY_ASSIGN(Loaded loaded, load_input(*version));
          g.world_before = loaded.content();
          AVPS_TRY(add_pure(kind, {version->name}, false, [&]() -> Result<json> { return loaded.content(); }));
        } else if (contents_too) {
          // Loaded only when not cut and fingerprinted before (a render's identity, shot after shot).
          AVPS_TRY(add_pure(kind, {version->name}, false, [&]() -> Result<json> {
            AVPS_TRY_ASSIGN(Loaded loaded, load_input(*version));
            return loaded.content();
          }));
        }
        found = true;
      }
    } else if (slice == "scene_versions" || slice == "shot_history") {
      // Every version, cut to this shot: QC rows of the shot, or the shot's GenPacks.
      std::string target = kind == "QC_BATCH" ? context.scene_id : target_for(kind, context);
      AVPS_TRY(refresh_index());
      std::vector<std::string> every_name;
      if (auto versions = versions_by_key.find(kind + "/" + target); versions != versions_by_key.end()) {
        for (const ledger::ArtifactRecord& r : versions->second) {
          every_name.push_back(r.name);
        }
      }
      by_name(every_name);
      if (contents_too) {
        AVPS_TRY_ASSIGN(std::vector<Loaded> versions, all_versions(kind, target));
        json list = json::array();
        std::vector<std::string> names;
        for (const Loaded& l : versions) {
          json value = kind == "QC_BATCH" ? rows_where(l.content(), "shot_id", context.shot_id) : l.content();
          if (kind == "QC_BATCH" && value["rows"].empty()) {
            continue;
          }
          list.push_back(value);
          names.push_back(l.record.name);
        }
        found = !list.empty();
        if (found) {
          add(kind, list, names);
        }
      } else {
        found = !every_name.empty();
      }
    } else {
      return make_error(ErrorCode::configuration,
                        skill.name + " reads " + kind + " through slice \"" + slice + "\", which this engine does not know");
    }
    if (!found && input.required) {
      g.missing = kind;
      return g;
    }
  }
  return g;
}

std::string Impl::step_key(const skills::SkillDef& skill, const Context& context, const Gathered& gathered,
                           const json& extra) {
  json basis = json::array();
  for (const json& f : gathered.fingerprints) {
    basis.push_back({f["kind"], f["sha256"]});
  }
  basis.push_back(extra);
  if (!context.graph_step.empty()) {
    basis.push_back({{"graph_step", context.graph_step}});
  }
  if (!skill.project_files_sha256.empty()) {
    // A project's own definition or prompt: editing it re-runs the skill (shipped ones change
    // only with avps).
    basis.push_back({{"project_files", skill.project_files_sha256}});
  }
  std::string k = context.key();
  Result<std::string> canonical = core::canonical_json(basis);
  return skill.name + (k.empty() ? "" : "/" + k) + (context.resolution.empty() ? "" : "/" + context.resolution) + "@" +
         core::sha256_hex(canonical ? *canonical : basis.dump()).substr(0, 16);
}

std::string Impl::loop_key(const skills::SkillDef& skill, const Context& context) {
  std::string k = context.key();
  return skill.name + (k.empty() ? "" : "/" + k) + (context.resolution.empty() ? "" : "/" + context.resolution);
}

// How the inputs are cut and fingerprinted from what they are made of: a change to that (to
// gather, cut_to_fields, without_gate, rows_where, spread, the step key's basis) must change this,
// so that no digest recorded before it is taken for a step key made after it.
constexpr int k_inputs_by_name_scheme = 1;

// The canonical JSON of the basis below, written piece by piece in its keys' order, so that the
// inputs' names (Gathered::by_name, already canonical text) are neither parsed nor copied into a
// document to be written out again: at 500 scenes the names of every scene's shot lists and QC
// batches, read by each scene's cost loops, made this a sixth of the walk.
std::string Impl::inputs_by_name(const skills::SkillDef& skill, const Job& job, const Gathered& gathered) const {
  const Context& c = job.ctx;
  const json context = {{"scene", c.scene_id},   {"shot", c.shot_id},
                        {"entity", c.entity_id}, {"scope", c.scope},
                        {"resolution", c.resolution}, {"graph_step", c.graph_step}};
  std::string text = "{\"avps\":";
  append_json_string(text, AVPS_VERSION_STRING);
  text += ",\"context\":" + canonical_text(context);
  text += ",\"extra\":" + canonical_text(job.extra);
  text += ",\"inputs\":" + gathered.by_name;
  text += ",\"loop_suffix\":";
  append_json_string(text, job.loop_suffix);
  text += ",\"project_files\":";
  append_json_string(text, skill.project_files_sha256);
  text += ",\"scheme\":" + std::to_string(k_inputs_by_name_scheme);
  text += ",\"skill\":";
  append_json_string(text, skill.name);
  text += '}';
  return core::sha256_hex(text).substr(0, 32);
}

Result<void> Impl::check_inputs_by_name(const skills::SkillDef& skill, const Job& job, const Gathered& gathered,
                                        const std::string& digest) const {
  // The basis as a document, as the digest was first made (scheme 1): the text above must be its
  // canonical JSON, byte for byte, or no digest recorded before would be found again.
  const Context& c = job.ctx;
  json basis = {{"scheme", k_inputs_by_name_scheme},
                {"avps", AVPS_VERSION_STRING},
                {"skill", skill.name},
                {"context",
                 {{"scene", c.scene_id},
                  {"shot", c.shot_id},
                  {"entity", c.entity_id},
                  {"scope", c.scope},
                  {"resolution", c.resolution},
                  {"graph_step", c.graph_step}}},
                {"inputs", json::parse(gathered.by_name)},
                {"extra", job.extra},
                {"loop_suffix", job.loop_suffix},
                {"project_files", skill.project_files_sha256}};
  const std::string expected = core::sha256_hex(canonical_text(basis)).substr(0, 32);
  if (expected != digest) {
    return make_error(ErrorCode::corruption, skill.name + job.ctx.label() + ": the digest of its inputs by name, " +
                                                 digest + ", differs from the one their document gives, " + expected);
  }
  return ok();
}

std::unordered_map<std::string, std::string>& Impl::known_steps_by_inputs() {
  if (!steps_by_inputs_read) {
    for (const auto& [step, kept] : record.steps) {
      const json summary = *kept;
      if (auto digest = summary.find("inputs_by_name"); digest != summary.end() && digest->is_string()) {
        steps_by_inputs.emplace(digest->get<std::string>(), step);
      }
    }
    steps_by_inputs_read = true;
  }
  return steps_by_inputs;
}

Result<void> Impl::key_job(const skills::SkillDef& skill, Job& job) {
  AVPS_TRY_ASSIGN(job.in, gather(skill, job.ctx));
  job.step = step_key(skill, job.ctx, job.in, job.extra) + job.loop_suffix;
  if (!job.in.missing.empty()) {
    job.log_extra.erase("inputs_by_name");
    return ok();
  }
  const std::string digest = inputs_by_name(skill, job, job.in);
  if (options.verify_by_name) {
    AVPS_TRY(check_inputs_by_name(skill, job, job.in, digest));
  }
  job.log_extra["inputs_by_name"] = digest;
  known_steps_by_inputs().insert_or_assign(digest, job.step);
  return ok();
}

Result<bool> Impl::known_by_name(const skills::SkillDef& skill, Job& job) {
  if (job.forced || job.collect) {
    return false;
  }
  std::unordered_map<std::string, std::string>& known = known_steps_by_inputs();
  auto last = record.loops.find(job.loop);
  if (known.empty() || last == record.loops.end() || !(*last->second).contains("inputs_by_name")) {
    // Nothing finished with a digest (a record from before inputs_by_name), or not this loop's
    // last step: naming the inputs would most likely be work on top of the whole gather.
    return false;
  }
  AVPS_TRY_ASSIGN(Gathered named, gather(skill, job.ctx, GatherMode::names));
  if (!named.missing.empty()) {
    return false;
  }
  const std::string digest = inputs_by_name(skill, job, named);
  if (options.verify_by_name) {
    AVPS_TRY(check_inputs_by_name(skill, job, named, digest));
  }
  auto step = known.find(digest);
  if (step == known.end()) {
    return false;
  }
  auto finished = record.steps.find(step->second);
  if (finished == record.steps.end() || !skill.settles((*finished->second).value("verdict", ""))) {
    return false;  // known, but not settled: the step runs, on inputs gathered whole
  }
  if (options.verify_by_name) {
    AVPS_TRY_ASSIGN(Gathered whole, gather(skill, job.ctx));
    const std::string gathered = step_key(skill, job.ctx, whole, job.extra) + job.loop_suffix;
    if (!whole.missing.empty() || gathered != step->second) {
      return make_error(ErrorCode::corruption,
                        skill.name + job.ctx.label() + ": known by the names of its inputs as step " + step->second +
                            ", but its inputs gathered whole make " +
                            (whole.missing.empty() ? "step " + gathered : "no step (" + whole.missing + " missing)"));
    }
  }
  job.step = step->second;
  job.in = std::move(named);
  job.in.by_name = "[]";  // what is known by name needs no more of it
  job.log_extra["inputs_by_name"] = digest;
  ++outcome.steps_known_by_name;
  return true;
}

Result<const json*> Impl::output_schema(const skills::SkillDef& skill) {
  // Made once per skill and run (the registry does not change during one): every run_jobs asked
  // for it, each scene's steps with nothing to do too. An error is not kept: it is met again.
  auto known = output_schemas.find(skill.name);
  if (known == output_schemas.end()) {
    AVPS_TRY_ASSIGN(json schema, skills::output_schema(skill, e.m_registry.schemas()));
    known = output_schemas.emplace(skill.name, std::move(schema)).first;
  }
  return &known->second;
}

Result<const artifacts::FaceCodec*> Impl::codec(const std::string& kind) {
  auto it = codecs.find(kind);
  if (it == codecs.end()) {
    AVPS_TRY_ASSIGN(artifacts::FaceCodec loaded,
                    artifacts::FaceCodec::load(project::schema_dirs(e.m_project.dir()), kind));
    it = codecs.emplace(kind, std::move(loaded)).first;
  }
  return &it->second;
}

bool carries_gate(const artifacts::FaceCodec& codec) {
  const json& document = codec.schema().document();
  return document.contains("properties") && document["properties"].contains("gate");
}

Result<const RecordTally*> Impl::tally_so_far() {
  const ledger::Ledger& ledger = e.m_project.ledger();
  RecordTally& tally = record.tally;  // as of the record's last event when the run started
  if (ledger.head().seq <= tally.seq) {
    return &tally;
  }
  // The budget's and the quota's tallies read a few members of every event: SQLite takes those
  // out, and the rest of each body (an artifact's details, a step's summary) is never parsed.
  const int64_t after = tally.seq;
  ledger::Ledger::EventQuery fresh;
  fresh.after_seq = after;
  fresh.members = governance::BudgetTally::members();
  for (const std::string& member : governance::NarrativeCallTally::members()) {
    if (std::find(fresh.members.begin(), fresh.members.end(), member) == fresh.members.end()) {
      fresh.members.push_back(member);
    }
  }
  std::optional<int64_t> first_route;  // the seq of the first routing decision among the new events
  AVPS_TRY(ledger.each_event(fresh, [&](ledger::Event&& event) -> Result<void> {
    tally.budget.add(event);
    tally.narrative.add(event);
    tally.seq = event.seq;
    if (!first_route && RecordTally::is_routing(event.kind)) {
      first_route = event.seq;
    }
    return ok();
  }));
  // Routing decisions are rare (none in most projects, a few per scene at most), so the query for
  // them is made only when the pass above met one. Asked for by kind, SQLite reads them through
  // events_by_kind and sorts them in a temporary b-tree, whose set-up allocates a page buffer at
  // every query; that malloc consolidates the fastbins first, a cost that grew with the run's heap
  // (at 500 scenes a tenth of every fold, for no event).
  if (!first_route) {
    return &tally;
  }
  // The routing decisions whole, up to the same event (a call finishing on another thread may
  // have appended one since: the next tally takes it).
  ledger::Ledger::EventQuery routes;
  routes.kinds = {RecordTally::routing_kinds().begin(), RecordTally::routing_kinds().end()};
  routes.after_seq = *first_route - 1;
  AVPS_TRY(ledger.each_event(routes, [&](ledger::Event&& event) -> Result<void> {
    if (event.seq <= tally.seq) {
      tally.note_routing(std::move(event));
    }
    return ok();
  }));
  return &tally;
}

json Impl::gate_config(const Context& context) const {
  json config = e.m_project.config().document;
  const ledger::Caps caps = record.overrides.caps_for(e.m_project.config().budget, context.scene_id, context.shot_id);
  auto usd = [](int64_t micro) { return static_cast<double>(micro) / 1e6; };
  config["budget"]["project_cap_usd"] = usd(caps.project_micro_usd);
  if (caps.scene_micro_usd) {
    config["budget"]["scene_cap_usd"] = usd(*caps.scene_micro_usd);
  }
  if (caps.shot_micro_usd) {
    config["budget"]["shot_cap_usd"] = usd(*caps.shot_micro_usd);
  }
  // The scene a check in a scene's cost loop stands for: its scene and shot caps are that scene's
  // (a stop holds only its scope; another scene's projection is that scene's own check's).
  if (!context.scene_id.empty() && context.shot_id.empty()) {
    config["budget"]["checked_scene"] = context.scene_id;
  }
  // The shot caps a person raised, for budget-gates' check of every shot's projection.
  for (const auto& [label, micro] : record.overrides.raised_caps()) {
    if (label.rfind("shot ", 0) == 0) {
      config["budget"]["shot_caps_usd"][label.substr(5)] = usd(micro);
    }
  }
  return config;
}

governance::LatestArtifact Impl::latest_json() {
  return [this](std::string_view kind, std::string_view target) -> Result<std::optional<json>> {
    AVPS_TRY_ASSIGN(auto loaded, latest(std::string(kind), std::string(target)));
    return loaded ? std::optional<json>{loaded->content()} : std::optional<json>{};
  };
}

SharedLatest Impl::latest_shared() {
  // The content alone, from the index's record in place: budget-gates' premium quota asks for
  // every scene's SHOTLIST at each scene's budget step, and a copy of each record was most of it.
  return [this](std::string_view kind, std::string_view target) -> Result<ContentCache::Content> {
    AVPS_TRY_ASSIGN(const ledger::ArtifactRecord* found, latest_indexed(kind, target));
    return found ? load(*found) : Result<ContentCache::Content>(ContentCache::Content{});
  };
}

KindGeneration Impl::kind_generation() {
  return [this](std::string_view kind) -> Result<std::optional<int64_t>> {
    AVPS_TRY(refresh_index());
    auto moved = kind_index_seq.find(std::string(kind));
    return std::optional<int64_t>{moved == kind_index_seq.end() ? int64_t{-1} : moved->second};
  };
}

// ---- steps ----------------------------------------------------------------------------------

// The next version of `kind`, unless the latest version has the same content (gate included): a
// resumed run's own write, or a step that came to the same answer again.
Result<std::string> Impl::write_output(const skills::SkillDef& skill, const std::string& kind,
                                       const std::string& target, json content, const gates::GateResult& gate,
                                       const json& details, bool& changed, std::optional<ledger::LogRow> row) {
  AVPS_TRY_ASSIGN(const artifacts::FaceCodec* face_codec, codec(kind));
  if (carries_gate(*face_codec)) {
    content["gate"] = gate.to_json();
  }
  AVPS_TRY_ASSIGN(std::string canonical, core::canonical_json(content));
  AVPS_TRY_ASSIGN(auto previous, latest(kind, target));
  WrittenBy writer{details.value("step", ""), details.value("attempt", 0)};
  // The same content as the latest version, verdict and all, is that version: a step re-run on
  // changed inputs that comes to the same answer (a judge re-judging, a resumed attempt) adds none.
  // (A WORLD_STATE made from a STATE_DIFF kept so names that diff among its inputs: finish_attempt.)
  if (previous && previous->record.json_sha256 == core::sha256_hex(canonical)) {
    // This very attempt's write, recorded before an interruption: it changed what it replaced,
    // as the uninterrupted attempt did, so what reads it is re-derived as then.
    auto by = record.written_by.find(previous->record.name);
    changed = by != record.written_by.end() && by->second == writer;
    return previous->record.name;
  }
  changed = !previous || without_gate(previous->content()) != without_gate(content);
  AVPS_TRY_ASSIGN(std::string face, face_codec->render(content));
  AVPS_TRY_ASSIGN(artifacts::ArtifactName name, e.m_project.store().next_name(kind, target));
  if (row) {
    row->artifact_output = name.filename();  // a write with a run-log row of its own (a QC_BATCH)
  }
  artifacts::NewArtifact artifact{name, content, face, "avps", skill.name, std::move(row), details};
  AVPS_TRY(e.m_project.store().write(artifact));
  record.written_by[name.filename()] = writer;
  artifact_written(name.filename());
  ++outcome.artifacts_written;
  return name.filename();
}

Result<Flow> Impl::hard_stop(const std::string& skill, const std::string& kind, const std::string& loop,
                             const Context& context, const json& findings, const std::string& reason,
                             json extra) {
  if (auto open = record.open_stops.find(loop); open != record.open_stops.end()) {
    // Already recorded and not overridden: the same stop stands.
    outcome.message = "STOP-" + std::to_string(open->second.value("seq", int64_t{0})) + ": " +
                      open->second.value("reason", reason);
    AVPS_TRY(report({.kind = Progress::Kind::stop, .skill = skill, .text = outcome.message}, context));
    return Flow::stop;
  }
  json scope = json::object();
  if (!context.scene_id.empty()) {
    scope["scene_id"] = context.scene_id;
  }
  if (!context.shot_id.empty()) {
    scope["shot_id"] = context.shot_id;
  }
  if (!context.entity_id.empty()) {
    scope["entity_id"] = context.entity_id;
  }
  ledger::LogRow row;
  row.skill_name = skill;
  row.scene_id = context.scene_id;
  row.shot_id = context.shot_id;
  row.outcome = "STOP";
  row.notes = reason;
  json body = {{"skill", skill}, {"kind", kind}, {"loop", loop}, {"scope", scope}, {"reason", reason}, {"findings", findings}};
  // Where it was raised: the Plan holds what depends on that step (plan.hpp).
  if (std::string at = graph_step_of(skill, context); !at.empty()) {
    body["graph_step"] = at;
  }
  for (auto& [k, v] : extra.items()) {
    body[k] = v;
  }
  AVPS_TRY_ASSIGN(ledger::Event event,
                  e.m_project.ledger().append(ledger::EventDraft{.kind = "run.hard_stop", .body = body, .row = row}));
  body["seq"] = event.seq;
  record.open_stops[loop] = body;
  loop_changed(loop);
  note_stop(record, loop, event.seq);  // as record.cpp does when it reads this event back
  outcome.message = "STOP-" + std::to_string(event.seq) + ": " + reason;
  AVPS_TRY(report({.kind = Progress::Kind::stop, .skill = skill, .text = outcome.message}, context));
  return Flow::stop;
}

Result<void> Impl::run_engine_checks(const Job& job, const gates::Outputs& outputs, gates::GateResult& gate) {
  auto worsen = [&gate](gates::Verdict to, std::string reason) {
    if (static_cast<int>(to) > static_cast<int>(gate.verdict)) {
      gate.verdict = to;
    }
    gate.reasons.push_back(std::move(reason));
  };
  for (const std::string& name : gate.deferred_checks) {
    if (name == "genpack_changed_on_regen") {
      // A GenPack for a next attempt (one that carries QC findings) must differ from the one the
      // failed attempt was rendered from: no blind retries.
      auto pack = outputs.find("GENPACK");
      if (pack == outputs.end() || job.extra.value("qc_findings", json::array()).empty()) {
        continue;
      }
      AVPS_TRY_ASSIGN(auto previous, latest("GENPACK", target_for("GENPACK", job.ctx)));
      auto writer = previous ? record.written_by.find(previous->record.name) : record.written_by.end();
      const bool own_earlier_write = writer != record.written_by.end() && writer->second.step == job.step;
      if (previous && !own_earlier_write && without_gate(previous->content()) == without_gate(pack->second)) {
        worsen(gates::Verdict::fail, "genpack_changed_on_regen: the GENPACK of " + job.ctx.shot_id + " equals " +
                                         previous->record.name + ", the failed attempt's: a retry must change something");
      }
    } else if (name == "regen_rules_adjust_the_shot" || name == "regen_simplifies_repeated_drift") {
      // The analyzer's REGEN_RULES for the shot it ran for (skills.md 2.19); both checks are
      // evaluated together, each reporting under its own name.
      auto rules = outputs.find("REGEN_RULES");
      if (rules == outputs.end() || job.ctx.shot_id.empty()) {
        continue;
      }
      for (std::string& reason : builtins::check_regen_rules(rules->second, job.ctx.shot_id, job.ctx.scene_id)) {
        if (reason.rfind(name + ":", 0) == 0) {
          worsen(gates::Verdict::fail, std::move(reason));
        }
      }
    } else if (name == "regen_limit_with_analyzer") {
      for (const std::string& missing :
           analyzer_runs_missing(record, job.ctx.scene_id, regen_number("analyzer_after_failed_attempts"))) {
        worsen(gates::Verdict::stop, "regen_limit_with_analyzer: " + missing + " without a " +
                                         regen_skill("analyzer") + " run");
      }
    }
    // run_log_complete: every run checks the whole run log at its start (check_integrity, rule
    // run_log.row), and a missing row is an integrity stop there.
  }
  return ok();
}

Impl::IntegrityFindings Impl::find_integrity_violations(const fs::path& dir, const ledger::Ledger& ledger,
                                                        IntegrityScope scope) {
  // Every rule of the gate but artifact.schema: what a run reads is the bytes as recorded (and
  // validated when written), verified here by hash; a schema changed since is the gate's to report.
  // From the mark the last clean check left, what was recorded since and what changed since
  // (gates::IntegrityOptions::since).
  std::optional<gates::VerifiedMark> since;
  if (scope == IntegrityScope::since_mark) {
    since = gates::read_verified_mark(dir);
  }
  IntegrityFindings findings;
  const gates::ProjectFiles files = gates::list_project_files(dir);
  for (core::Violation& v : gates::check_integrity(dir, ledger, files,
                                                   {.schemas = false, .since = since ? &*since : nullptr,
                                                    .clean = &findings.clean})) {
    if (!v.transient) {
      findings.found.push_back(std::move(v));
    }
  }
  return findings;
}

Result<Flow> Impl::check_integrity(IntegrityScope scope, std::optional<IntegrityFindings> made) {
  const std::string loop = "integrity";
  const fs::path& dir = e.m_project.dir();
  auto open = record.open_stops.find(loop);
  // Whole when an integrity stop is open: whether it is resolved is the whole check's to say.
  if (open != record.open_stops.end()) {
    scope = IntegrityScope::whole;
  }
  if (!made || scope == IntegrityScope::whole) {
    made = find_integrity_violations(dir, e.m_project.ledger(), scope);
  }
  std::vector<core::Violation>& found = made->found;
  const gates::VerifiedMark& clean = made->clean;
  if (clean.ledger.seq > 0) {
    if (Result<void> kept = gates::write_verified_mark(dir, clean); !kept) {
      // A mark only spares work: without it the next run checks everything, and this one goes on.
      AVPS_TRY(report({.kind = Progress::Kind::note,
                       .text = "warning: the integrity mark was not written (" + kept.error().message +
                               "); the next run checks every file again"}));
    }
  }
  if (found.empty()) {
    if (open != record.open_stops.end()) {
      const int64_t seq = open->second.value("seq", int64_t{0});
      ledger::LogRow row;
      row.skill_name = "avps";
      row.outcome = "DONE";
      row.notes = "STOP-" + std::to_string(seq) + " resolved: the project's files match the ledger again";
      AVPS_TRY(e.m_project.ledger().append(ledger::EventDraft{
          .kind = "stop.resolved", .body = {{"stop_seq", seq}, {"reason", row.notes}}, .row = row}));
      AVPS_TRY(report({.kind = Progress::Kind::note, .text = row.notes}));
      loop_changed(open->first);
      record.open_stops.erase(open);
    }
    return Flow::go_on;
  }
  json findings = json::array();
  for (const core::Violation& v : found) {
    findings.push_back(v.subject + ": " + v.message + " [" + v.rule + "]");
  }
  const std::string reason = std::to_string(found.size()) + " file(s) no longer match the ledger (first: " +
                             findings.front().get<std::string>() +
                             "); restore them as the ledger recorded them (`avps gate` lists them all), and record a "
                             "change you meant with `avps artifact import` or `edit`";
  if (open != record.open_stops.end()) {
    // The same stop stands while the files are not restored: say what is wrong now.
    outcome.message = "STOP-" + std::to_string(open->second.value("seq", int64_t{0})) + ": " + reason;
    AVPS_TRY(report({.kind = Progress::Kind::stop, .skill = "avps", .text = outcome.message}));
    return Flow::stop;
  }
  return hard_stop("avps", "integrity", loop, Context{}, findings, reason);
}

bool Impl::stop_requested() const { return e.m_observer.interrupted(); }

Result<void> Impl::report(Progress progress, const Context& context) {
  if (progress.kind == Progress::Kind::phase) {
    walking_phase = progress.phase;
  } else if (progress.phase.empty()) {
    progress.phase = walking_phase;
  }
  if (progress.scene_id.empty()) {
    progress.scene_id = context.scene_id;
  }
  if (progress.shot_id.empty()) {
    progress.shot_id = context.shot_id;
  }
  AVPS_TRY_ASSIGN(ledger::Spend spent, e.m_project.ledger().spend("", ""));
  progress.spent_micro_usd = spent.total();
  progress.cap_micro_usd = e.m_governor.caps().project_micro_usd;
  if (held_progress) {
    held_progress->push_back(std::move(progress));
    if (integrity_known_clean && integrity_known_clean()) {
      release_progress(true);
    }
    return ok();
  }
  e.m_observer.progress(progress);
  return ok();
}

void Impl::release_progress(bool show) {
  if (!held_progress) {
    return;
  }
  std::vector<Progress> held = std::move(*held_progress);
  held_progress.reset();
  if (show) {
    for (const Progress& progress : held) {
      e.m_observer.progress(progress);
    }
  }
}

Result<Flow> Impl::budget_stop(const Call& call, const std::string& skill, const std::string& loop,
                               const Context& context) {
  // The calls of this round prepared before the refused one were never sent: their reservations
  // are released now (every reservation open at this point is one of them — each round settles or
  // releases all of its own before the next), not left to be reconciled as spent.
  AVPS_TRY_ASSIGN(std::vector<ledger::Reservation> prepared, e.m_project.ledger().open_reservations());
  for (const ledger::Reservation& r : prepared) {
    AVPS_TRY(e.m_governor.release(r, "not sent: " + call.purpose + ", in the same round, was refused by the budget"));
  }
  // The cap the call does not fit under, named as `avps override --raise-cap` raises it.
  std::string cap = "project";
  AVPS_TRY_ASSIGN(std::vector<governance::CapPosition> positions,
                  e.m_governor.positions(call.scene_id, call.shot_id));
  for (const governance::CapPosition& p : positions) {
    if (p.spend.total() + call.route.worst_case_micro_usd > p.cap_micro_usd) {
      cap = p.scope;
      break;
    }
  }
  return hard_stop(skill, "budget", loop, context, json::array(),
                   call.refusal.value_or("budget: refused") + "; raise the " + cap +
                       " cap with `avps override --raise-cap`, or cut the plan",
                   {{"needed_micro_usd", call.route.worst_case_micro_usd}, {"cap", cap}});
}

Context Impl::context_for_scope(const std::string& scope, const Context& from) {
  Context c;
  c.scope = scope;
  if (scope == "scene" || scope == "shot") {
    c.scene_id = from.scene_id;
  }
  if (scope == "shot") {
    c.shot_id = from.shot_id;
    c.resolution = from.resolution;
  }
  if (scope == "character" || scope == "set" || scope == "voice") {
    c.entity_id = from.entity_id;
  }
  return c;
}

// Starts a job: its inputs, its step, and where its loop stands in the record.
Result<void> Impl::start_job(const skills::SkillDef& skill, Job& job) {
  job.loop = loop_key(skill, job.ctx) + job.loop_suffix;
  AVPS_TRY_ASSIGN(bool known, known_by_name(skill, job));
  if (!known) {
    AVPS_TRY(key_job(skill, job));
  }
  job.tier = skill.tier ? skill.tier->default_tier : "";
  // Where the step stands, by the plan's rule (a stop holding it was checked before it started).
  UnitFacts facts;
  if (!job.in.missing.empty()) {
    facts.missing.push_back(job.in.missing);
  }
  facts.inputs = job.step;
  // The summaries of the step's last finish and of its loop's last step, each decoded once (nothing
  // below changes them before it returns).
  auto summary_of = [](const std::map<std::string, StepSummary>& summaries, const std::string& key) {
    auto found = summaries.find(key);
    return found == summaries.end() ? std::nullopt : std::optional<json>(*found->second);
  };
  const std::optional<json> finished = summary_of(record.steps, job.step);
  const std::optional<json> last = summary_of(record.loops, job.loop);
  facts.passed_with_inputs = !job.forced && finished && skill.settles(finished->value("verdict", ""));
  if (last) {
    facts.last_inputs = last->value("step", "");
  }
  const UnitState state = Plan::state_of(facts).state;
  if (state == UnitState::waiting) {
    job.state = JobState::waiting;
    return ok();
  }
  if (job.collect) {
    job.state = JobState::ready;  // a judge-only attempt: its caller decides what the verdict means
    return ok();
  }
  if (state == UnitState::up_to_date) {
    ++outcome.steps_skipped;
    job.state = JobState::done;
    job.verdict = finished->value("verdict", "");
    if (last && last->value("step", "") != job.step && !skill.settles(last->value("verdict", ""))) {
      // The loop failed on other inputs and came back to ones an earlier attempt settled (a
      // revision that returned to an earlier version's content): that verdict stands again, and
      // the log says so, so that what reads the loop's last step (status, `gate --require`) sees
      // the verdict on the inputs as they are, not the failure on the ones in between. (Steps of
      // one loop that both settled, such as a scene's cost loop before proxy and before final,
      // need no restating.)
      json body = *finished;
      body["skill"] = skill.name;
      body["restated"] = true;
      if (auto digest = job.log_extra.find("inputs_by_name"); digest != job.log_extra.end()) {
        body["inputs_by_name"] = *digest;  // the names it came back by, which the settled attempt may not have had
      }
      ledger::LogRow row;
      row.skill_name = skill.name;
      row.scene_id = job.ctx.scene_id;
      row.shot_id = job.ctx.shot_id;
      row.outcome = job.verdict;
      row.notes = "inputs equal to those attempt " + std::to_string(body.value("attempt", 0)) +
                  " settled: its verdict stands, no call made";
      AVPS_TRY(e.m_project.ledger().append(ledger::EventDraft{.kind = "step.finished", .body = body, .row = row}));
      note_loop_verdict(record, job.loop, job.verdict);  // as record.cpp does when it reads this event back
      record.loops[job.loop] = make_summary(step_summary(body));
      loop_changed(job.loop);
    }
    return ok();
  }
  if (std::optional<std::string> accepted = record.overrides.accepted(job.loop)) {
    const std::string verdict = last ? last->value("verdict", "") : "";
    if (verdict == "FAIL" || (verdict == "FIX" && skill.fix_loops())) {
      ledger::LogRow row;
      row.skill_name = skill.name;
      row.scene_id = job.ctx.scene_id;
      row.shot_id = job.ctx.shot_id;
      row.outcome = "DONE";
      row.artifact_output = *accepted;
      row.notes = "accepted by a person (avps override) despite its gate";
      AVPS_TRY(e.m_project.ledger().append(ledger::EventDraft{
          .kind = "step.finished",
          .body = {{"step", job.step}, {"loop", job.loop}, {"skill", skill.name}, {"verdict", "ACCEPTED"},
                   {"attempt", last->value("attempt", 1)}, {"outputs", *accepted}},
          .row = row}));
      job.state = JobState::done;
      job.verdict = "ACCEPTED";
      return ok();
    }
  }
  if (last) {
    const json& body = *last;
    // A FAIL, or a FIX the skill's on_fix acts on, that the loop has not answered yet.
    if (const std::string verdict = body.value("verdict", "");
        verdict == "FAIL" || (verdict == "FIX" && skill.fix_loops())) {
      job.verdict = verdict;
      job.attempt = body.value("attempt", 1) + 1;
      job.escalations = body.value("escalations", 0);
      job.tier = body.value("tier", job.tier);
      job.via_tier = body.value("via_tier", "");
      job.via_escalations = body.value("via_escalations", 0);
      job.reroutes = body.value("reroutes", 0);
      job.findings = body.value("reasons", json::array());
      job.resumed_failure = true;
    }
  }
  job.state = JobState::ready;
  return ok();
}

// Applies the loop policy after a FAIL of `job` (its on_fail branch), or after a FIX when the skill
// has an on_fix branch (skill.schema.json loop_policy): revise (self or upstream), escalate, or
// stop. The attempts of one loop count together whichever branch answered them. Returns with
// job.state ready for the next attempt, or done with the outcome set.
Result<Flow> Impl::apply_policy(const skills::SkillDef& skill, Job& job) {
  const bool fixing = job.verdict == "FIX" && skill.fix_loops();
  const json on_fail = skill.loop_policy.value(fixing ? "on_fix" : "on_fail", json::object());
  const std::string via = on_fail.value("via", skill.name);
  const int per_tier = on_fail.value("max_revisions", 0) + 1;
  const int failed = job.attempt;  // attempts so far, none of which settled the loop
  const int granted = record.overrides.extra_attempts(job.loop);
  const bool self = via == skill.name;
  const skills::SkillDef* reviser = self ? &skill : e.m_registry.find(via);
  if (!reviser) {
    return make_error(ErrorCode::configuration, skill.name + "'s loop policy revises via " + via + ", which is no skill");
  }
  const int escalations = self ? job.escalations : job.via_escalations;
  // budget-gates: each cap a person raised over a budget stop of this loop buys one re-check of the
  // same plan under the new cap, without another simplification (the decision was to pay).
  const bool budget_check = skill.builtin == "enforce_budget";
  const int rechecks = budget_check ? record.overrides.cap_raises(job.loop) : 0;
  // A re-route's re-check is not one of the attempts the policy counts.
  const int limit = per_tier * (escalations + 1) + granted + job.reroutes;
  const bool recheck = failed >= limit && failed < limit + rechecks;
  if (budget_check && !recheck) {
    // A projection over a cap is re-routed first (COST_REPORT's one-tier-down suggestions) and
    // checked again; only a FAIL after that asks for a simpler shot list (DESIGN §3 cost loop).
    // Not when a person raised the cap: the decision was to pay for this plan, not to cut it.
    AVPS_TRY_ASSIGN(Reroute reroute, reroute_for_budget(skill, job));
    if (reroute.flow != Flow::go_on) {
      job.state = JobState::done;
      return reroute.flow;
    }
    if (reroute.rerouted) {
      ++job.reroutes;
      ++job.attempt;
      job.findings = json::array();
      job.state = JobState::ready;
      AVPS_TRY(key_job(skill, job));
      return Flow::go_on;
    }
  }
  std::string refused;  // why the t3 quota kept the loop from escalating
  if (failed >= limit + rechecks) {
    std::optional<std::string> next;
    if (on_fail.value("then", "") == "escalate" && reviser->tier) {
      const std::string current = self ? job.tier : (job.via_tier.empty() ? reviser->tier->default_tier : job.via_tier);
      Result<std::optional<std::string>> up = governance::escalate(*reviser->tier, current, escalations);
      if (up) {
        next = *up;
      }
      // An escalation recorded before an interruption stands: deciding it again would count the
      // calls it led to against it (the t3 quota), and a resumed run must end as the whole one.
      AVPS_TRY_ASSIGN(const RecordTally* so_far, tally_so_far());
      const bool decided = next && so_far->escalations.count(job.loop + "#" + std::to_string(failed));
      if (next && *next == "t3" && !decided) {
        // t3 ≤ quotas/t3_narrative_pct of the narrative calls (DESIGN §3): room for every attempt
        // the loop may make on t3, or no escalation.
        AVPS_TRY_ASSIGN(refused, t3_refusal(skill, job, reviser->name, current, per_tier));
        if (!refused.empty()) {
          next.reset();
        }
      }
      if (next) {
        // Escalation is logged with its reason and cost delta (DESIGN §3).
        AVPS_TRY_ASSIGN(json delta, escalation_delta(*reviser, current, *next));
        ledger::LogRow row;
        row.skill_name = role("router");
        row.scene_id = job.ctx.scene_id;
        row.shot_id = job.ctx.shot_id;
        row.tier = *next;
        row.outcome = "DONE";
        row.notes = "escalate " + reviser->name + " " + current + " -> " + *next + " after " + std::to_string(failed) +
                    " failed attempts of " + skill.name + job.ctx.label() + "; worst-case cost delta " +
                    governance::usd_decimal(delta.value("delta_micro_usd", int64_t{0})) + " USD";
        if (!decided) {
          AVPS_TRY(e.m_project.ledger().append(ledger::EventDraft{
              .kind = "route.escalated",
              .body = {{"loop", job.loop}, {"skill", reviser->name}, {"from", current}, {"to", *next},
                       {"after_attempts", failed}, {"reason", job.findings}, {"cost", delta}},
              .row = row}));
        }
        AVPS_TRY(report({.kind = Progress::Kind::escalate,
                         .skill = reviser->name,
                         .tier = *next,
                         .text = skill.name + job.ctx.label() + ": escalating " + reviser->name + " " + current +
                                 " -> " + *next},
                        job.ctx));
        if (self) {
          job.tier = *next;
          ++job.escalations;
        } else {
          job.via_tier = *next;
          ++job.via_escalations;
        }
      }
    }
    if (!next) {
      job.state = JobState::done;
      const std::string last =
          job.findings.empty() ? std::string() : " (last: " + job.findings.front().get<std::string>() + ")";
      if (budget_check) {
        // The plan's projection is over a cap after the simplification the policy allows: a budget
        // stop, which a person lifts by raising that cap (or by cutting the plan).
        const json status =
            job.outputs.count("BUDGET_STATUS") ? job.outputs.at("BUDGET_STATUS") : json::object();
        const std::string cap = governance::budget_stop_cap(status, job.findings);
        return hard_stop(skill.name, "budget", job.loop, job.ctx, job.findings,
                         "budget: " + skill.name + job.ctx.label() + " found the projection over the " + cap +
                             " cap " + std::to_string(failed) + " times" + last +
                             "; raise the cap with `avps override --raise-cap`, or cut the plan",
                         {{"cap", cap}});
      }
      return hard_stop(
          skill.name, "gate", job.loop, job.ctx, job.findings,
          skill.name + job.ctx.label() +
              (fixing ? " still asked for a fix after " + std::to_string(failed) +
                            " attempts, as many as its on_fix policy allows"
                      : " failed its gate " + std::to_string(failed) + " times, at every tier its policy allows") +
              last + (refused.empty() ? std::string() : "; " + refused) +
              "; a person must decide: revise the inputs, or `avps override`");
    }
  }
  if (!self && !recheck) {
    AVPS_TRY_ASSIGN(Flow revised, revise_upstream(skill, *reviser, job));
    if (revised != Flow::go_on) {
      job.state = JobState::done;
      return revised;
    }
    job.findings = json::array();  // the judge judges the revision afresh
  }
  ++job.attempt;
  job.state = JobState::ready;
  // The judged inputs may have changed with the revision: the step is keyed by them.
  AVPS_TRY(key_job(skill, job));
  return Flow::go_on;
}

Result<json> Impl::escalation_delta(const skills::SkillDef& skill, const std::string& from, const std::string& to) {
  AVPS_TRY_ASSIGN(governance::Task task, governance::Task::for_skill(skill, 4000));
  task.tier = from;
  AVPS_TRY_ASSIGN(governance::Route a, e.m_router.route(task));
  task.tier = to;
  AVPS_TRY_ASSIGN(governance::Route b, e.m_router.route(task));
  return json{{"from_model", a.model},
              {"to_model", b.model},
              {"delta_micro_usd", b.worst_case_micro_usd - a.worst_case_micro_usd}};
}

// Why the t3 quota refuses an escalation of `reviser` from `from` to t3 that may make `needed`
// calls there, or "" when it admits it (governance::admit_t3_escalation: against the narrative
// calls the plan projects for the whole project, or those recorded when more). A refusal is logged
// once per loop and failed-attempt count: a `route.escalation_refused` event with its model-router
// RUN_LOG row, like an escalation.
Result<std::string> Impl::t3_refusal(const skills::SkillDef& judge, const Job& job, const std::string& reviser,
                                     const std::string& from, int needed) {
  project::Project& project = e.m_project;
  AVPS_TRY_ASSIGN(const RecordTally* so_far, tally_so_far());
  const std::vector<ledger::Event>& events = so_far->routing;
  AVPS_TRY_ASSIGN(std::string brief, core::read_file(project.config().brief));
  AVPS_TRY_ASSIGN(int64_t projected,
                  governance::projected_narrative_calls(latest_json(), brief, e.m_registry.skills()));
  const governance::NarrativeCalls recorded = so_far->narrative.calls();
  const governance::T3Admission admission = governance::admit_t3_escalation(
      recorded.t3, needed, projected, recorded.total,
      governance::ProjectionSettings::from_config(project.config()).t3_narrative_pct);
  if (admission.admitted()) {
    return std::string();
  }
  const int failed = job.attempt;
  const bool logged = std::any_of(events.begin(), events.end(), [&](const ledger::Event& ev) {
    return ev.kind == "route.escalation_refused" && ev.body.value("loop", "") == job.loop &&
           ev.body.value("after_attempts", 0) == failed;
  });
  if (!logged) {
    ledger::LogRow row;
    row.skill_name = role("router");
    row.scene_id = job.ctx.scene_id;
    row.shot_id = job.ctx.shot_id;
    row.tier = from;
    row.outcome = "WARN";
    row.notes = "no escalation of " + reviser + " " + from + " -> t3 after " + std::to_string(failed) +
                " failed attempts of " + judge.name + job.ctx.label() + ": " + admission.message();
    json quota = {{"pct", admission.pct},
                  {"used", admission.used},
                  {"needed", admission.needed},
                  {"projected_narrative_calls", admission.projected},
                  {"recorded_narrative_calls", admission.recorded},
                  {"allowed", admission.allowed}};
    AVPS_TRY(project.ledger().append(ledger::EventDraft{.kind = "route.escalation_refused",
                                                        .body = {{"loop", job.loop},
                                                                 {"skill", reviser},
                                                                 {"from", from},
                                                                 {"to", "t3"},
                                                                 {"after_attempts", failed},
                                                                 {"reason", admission.message()},
                                                                 {"quota", quota}},
                                                        .row = row}));
  }
  return "escalation of " + reviser + " " + from + " -> t3 refused: " + admission.message();
}

// A FAIL of `judge` revises what `reviser` wrote, with the judge's findings as feedback.
Result<Flow> Impl::revise_upstream(const skills::SkillDef& judge, const skills::SkillDef& reviser, Job& failed) {
  const std::string done_key = failed.loop + "#" + std::to_string(failed.attempt);
  if (record.revisions_done.count(done_key)) {
    return Flow::go_on;
  }
  Job job;
  job.ctx = context_for_scope(reviser.scope, failed.ctx);
  // A version a person recorded (imported, edited) is not replaced by an automatic revision: the
  // judge's verdict on it goes to a person, as a hard stop naming it.
  for (const skills::SkillOutput* output : reviser.model_outputs()) {
    AVPS_TRY_ASSIGN(auto current, latest(output->kind, target_for(output->kind, job.ctx)));
    if (current && current->record.author == "human") {
      return hard_stop(judge.name, "gate", failed.loop, failed.ctx, failed.findings,
                       judge.name + failed.ctx.label() + " failed on " + current->record.name +
                           ", a person's version: " + reviser.name +
                           " does not revise it automatically; a person must decide (import a revised " + output->kind +
                           ", or `avps override`)");
    }
  }
  job.forced = true;
  job.loop_suffix = "<" + failed.loop;
  job.revision_for = {{"loop", failed.loop}, {"attempt", failed.attempt}, {"judge", judge.name}};
  // The judge's step names what it judged (its inputs' digest): a revision of another version for
  // the same findings is another step, not an earlier one again (whose writes would pass for its
  // own, and whose finish would hide this one's being cut short).
  job.extra = {{"revision_for", job.revision_for}, {"judged", failed.step}};
  std::vector<Job> jobs{job};
  AVPS_TRY(start_job(reviser, jobs.front()));
  Job& j = jobs.front();
  if (j.state == JobState::waiting) {
    return make_error(ErrorCode::not_found, reviser.name + " cannot revise for " + judge.name + ": it needs " + j.in.missing);
  }
  if (!j.resumed_failure) {
    j.findings = failed.findings;
    if (!failed.via_tier.empty()) {
      j.tier = failed.via_tier;
    }
  }
  const std::string verdict = failed.verdict.empty() ? std::string("FAIL") : failed.verdict;
  AVPS_TRY(report({.kind = Progress::Kind::revise,
                   .skill = judge.name,
                   .verdict = verdict,
                   .attempt = failed.attempt,
                   .text = judge.name + failed.ctx.label() + ": " + verdict + " -> revising via " + reviser.name},
                  failed.ctx));
  AVPS_TRY_ASSIGN(Flow flow, run_jobs(reviser, jobs));
  if (flow == Flow::go_on && jobs.front().changed_upstream && reviser.name != judge.name) {
    // Content an earlier phase derived from changed: walk the graph again from the top, where
    // every step whose inputs did not change is skipped.
    return Flow::restart;
  }
  return flow;
}

// Runs a skill for several contexts: one round per attempt, the calls of a round in flight
// together, the outcomes committed in the jobs' order (so --jobs never changes a byte).
Result<Flow> Impl::run_jobs(const skills::SkillDef& skill, std::vector<Job>& jobs) {
  for (Job& job : jobs) {
    if (job.state == JobState::fresh) {
      AVPS_TRY(start_job(skill, job));
    }
    if (job.state == JobState::ready && record.open_stops.count(job.loop)) {
      job.state = JobState::done;
      return hard_stop(skill.name, "gate", job.loop, job.ctx, json::array(), "open");
    }
    if (job.state == JobState::ready && job.resumed_failure) {
      // Resumed after a FAIL the previous run recorded but did not act on (an interruption between
      // the step and its escalation, say): the policy decides now, as it would have then. A
      // revision (forced) too: its own loop may escalate.
      job.attempt -= 1;
      AVPS_TRY_ASSIGN(Flow flow, apply_policy(skill, job));
      if (flow != Flow::go_on) {
        return flow;
      }
    }
  }
  static const json k_no_schema;
  AVPS_TRY_ASSIGN(const json* schema_made,
                  skill.executor == skills::Executor::model ? output_schema(skill) : Result<const json*>(&k_no_schema));
  const json& schema = *schema_made;
  for (;;) {
    std::vector<Job*> active;
    for (Job& job : jobs) {
      if (job.state == JobState::ready) {
        active.push_back(&job);
      }
    }
    if (active.empty()) {
      return Flow::go_on;
    }
    if (stop_requested()) {
      return Flow::interrupted;
    }
    // A paged skill's attempt is a sequence of calls, each page after the one before.
    if (skill.paging) {
      for (Job* job : active) {
        AVPS_TRY_ASSIGN(Flow paged, run_pages(skill, *job, schema));
        if (paged != Flow::go_on) {
          return paged;
        }
        AVPS_TRY_ASSIGN(Flow flow, finish_attempt(skill, *job));
        if (flow != Flow::go_on) {
          return flow;
        }
      }
      continue;
    }
    // Prepare every call of the round (routing and reservations in job order), send them together.
    std::vector<Call*> calls;
    for (Job* job : active) {
      job->call = Call{};
      if (skill.executor != skills::Executor::model) {
        continue;
      }
      Call& c = job->call;
      AVPS_TRY(build_call(skill, *job, schema, c));
      AVPS_TRY(report({.kind = Progress::Kind::attempt,
                       .skill = skill.name,
                       .tier = job->tier,
                       .attempt = job->attempt,
                       .text = skill.name + job->ctx.label() + ": attempt " + std::to_string(job->attempt) + " on " +
                               job->tier},
                      job->ctx));
      AVPS_TRY_ASSIGN(bool granted, exchange->prepare(c));
      if (!granted) {
        job->state = JobState::done;
        return budget_stop(c, skill.name, job->loop, job->ctx);
      }
      calls.push_back(&c);
    }
    AVPS_TRY(exchange->send(calls, options.jobs));

    // Evaluate and commit in job order.
    for (Job* job : active) {
      AVPS_TRY_ASSIGN(Flow flow, finish_attempt(skill, *job));
      if (flow != Flow::go_on) {
        return flow;
      }
    }
  }
}

// The model request of one attempt of `job`: prompt, input slices, output schema, findings.
Result<void> Impl::build_call(const skills::SkillDef& skill, const Job& job, const json& schema, Call& c) {
  c.purpose = skill.name + job.ctx.label();
  c.scene_id = job.ctx.scene_id;
  c.shot_id = job.ctx.shot_id;
  AVPS_TRY_ASSIGN(c.task, governance::Task::for_skill(skill, 0));
  c.task.tier = job.tier;
  backends::ModelRequest& r = c.model_request;
  r.skill = skill.name;
  r.prompt = skill.prompt_text;
  r.scope = {{"attempt", job.attempt}};  // each revision is a call of its own
  if (!job.ctx.scene_id.empty()) {
    r.scope["scene_id"] = job.ctx.scene_id;
  }
  if (!job.ctx.shot_id.empty()) {
    r.scope["shot_id"] = job.ctx.shot_id;
  }
  if (!job.ctx.resolution.empty()) {
    r.scope["resolution"] = job.ctx.resolution;
  }
  if (!job.ctx.entity_id.empty()) {
    r.scope["entity_id"] = job.ctx.entity_id;
    r.scope["kind"] = skill.outputs.front().kind;
  }
  if (!job.revision_for.is_null()) {
    r.scope["revision_for"] = job.revision_for;
  }
  AVPS_TRY_ASSIGN(const json* inputs, job.in.inputs());
  r.inputs = *inputs;
  if (is_revision(job.findings, job.revision_for, json::object())) {
    // A revision is made from what it revises: the latest version of each output, as REVISING. A
    // paged skill's request stays flat: it names those versions (scope.revising) instead, so a
    // revision of another version for the same findings is another request, not a replay of the
    // answer that revised an earlier one.
    json revising = json::object();
    json revising_names = json::object();
    const WrittenBy writer{job.step, job.attempt};
    for (const skills::SkillOutput* output : skill.model_outputs()) {
      AVPS_TRY_ASSIGN(auto current, latest(output->kind, target_for(output->kind, job.ctx)));
      // Not this very attempt's own write before an interruption: the resumed request is the one
      // the uninterrupted run made.
      if (auto by = current ? record.written_by.find(current->record.name) : record.written_by.end();
          by != record.written_by.end() && by->second == writer) {
        AVPS_TRY(refresh_index());
        std::optional<Loaded> before;
        if (const ledger::ArtifactRecord* earlier = version_before(current->record)) {
          AVPS_TRY_ASSIGN(before, by_name(earlier->name));
        }
        current = std::move(before);
      }
      if (current) {
        revising_names[output->kind] = current->record.name;
        if (!skill.paging) {
          revising[output->kind] = without_gate(current->content());
        }
      }
    }
    if (!revising.empty()) {
      r.inputs["REVISING"] = std::move(revising);
    } else if (skill.paging && !revising_names.empty()) {
      r.scope["revising"] = std::move(revising_names);
    }
  }
  r.output_schema = schema;
  r.findings = job.findings;
  r.seed = e.m_project.config().seed;
  // A vision call sees what it judges: the media among its inputs.
  c.shows = job.in.shown;
  return ok();
}

namespace {

// The scene a per-scene artifact is about ("" when it names none).
std::string scene_of(const json& artifact) {
  if (artifact.is_object()) {
    return artifact.value("scene_id", artifact.value("target", std::string()));
  }
  return "";
}

}  // namespace

// One attempt of a paged skill (skill.schema.json "paging"): page after page, each a call of its
// own (routed, reserved, recorded, answered from the record on resume), until the last input page
// or until the model says there is no more. The attempt's outputs are assembled into
// job.paged_output, or job.page_failure says why they cannot be.
Result<Flow> Impl::run_pages(const skills::SkillDef& skill, Job& job, const json& schema) {
  const skills::Paging& paging = *skill.paging;
  const int per_page = std::max(1, paging.rows_per_page);
  json all_rows = json::array();
  AVPS_TRY_ASSIGN(const json* gathered, job.in.inputs());
  if (!paging.input.empty() && gathered->contains(paging.input)) {
    all_rows = (*gathered)[paging.input].value("rows", json::array());
  }
  const int total_rows = static_cast<int>(all_rows.size());
  const int input_pages = paging.input.empty() ? 0 : std::max(1, (total_rows + per_page - 1) / per_page);
  const std::vector<const skills::SkillOutput*> outputs = skill.model_outputs();

  json assembled = json::object();
  json carry;
  int64_t cost = 0;
  int64_t elapsed_ms = 0;
  int64_t worst_case = 0;
  int64_t largest_request = 0;
  job.page_failure.clear();
  job.pages = 0;
  for (int index = 1;; ++index) {
    if (index > 1 && stop_requested()) {
      job.state = JobState::done;
      return Flow::interrupted;
    }
    if (index > k_max_pages) {
      job.page_failure = "the model asked for more than " + std::to_string(k_max_pages) + " pages";
      break;
    }
    Call c;
    AVPS_TRY(build_call(skill, job, schema, c));
    json page = {{"index", index}, {"rows_per_page", per_page}};
    json& inputs = c.model_request.inputs;
    if (!paging.input.empty()) {
      const int offset = (index - 1) * per_page;
      const int end = std::min(total_rows, offset + per_page);
      json rows = json::array();
      std::set<std::string> page_scenes;
      for (int i = offset; i < end; ++i) {
        rows.push_back(all_rows[static_cast<size_t>(i)]);
        page_scenes.insert(all_rows[static_cast<size_t>(i)].value("scene_id", ""));
      }
      page["of"] = input_pages;
      page["offset"] = offset;
      page["total_rows"] = total_rows;
      if (!rows.empty()) {
        page["first"] = rows.front().value("scene_id", "");
        page["last"] = rows.back().value("scene_id", "");
      }
      if (inputs.contains(paging.input)) {
        inputs[paging.input]["rows"] = rows;
      }
      for (const std::string& kind : paging.per_scene) {
        if (!inputs.contains(kind) || !inputs[kind].is_array()) {
          continue;
        }
        json kept = json::array();
        for (const json& artifact : inputs[kind]) {
          if (page_scenes.count(scene_of(artifact))) {
            kept.push_back(artifact);
          }
        }
        inputs[kind] = kept;
      }
    }
    if (!carry.is_null()) {
      inputs["CARRY"] = carry;
    }
    c.model_request.scope["page"] = page;
    c.purpose += " page " + std::to_string(index);
    AVPS_TRY(report({.kind = Progress::Kind::attempt,
                     .skill = skill.name,
                     .tier = job.tier,
                     .attempt = job.attempt,
                     .text = skill.name + job.ctx.label() + ": attempt " + std::to_string(job.attempt) + " on " +
                             job.tier + ", page " + std::to_string(index) +
                             (input_pages > 0 ? " of " + std::to_string(input_pages) : "")},
                    job.ctx));
    AVPS_TRY_ASSIGN(bool granted, exchange->prepare(c));
    if (!granted) {
      job.state = JobState::done;
      return budget_stop(c, skill.name, job.loop, job.ctx);
    }
    std::vector<Call*> one{&c};
    AVPS_TRY(exchange->send(one, options.jobs));
    ++job.pages;
    cost += c.response.value("cost_micro_usd", int64_t{0});
    elapsed_ms += c.response.value("elapsed_ms", int64_t{0});
    worst_case += c.route.worst_case_micro_usd;
    largest_request = std::max(largest_request, c.request_size);
    job.call = c;

    if (const std::string stop = c.response.value("stop_reason", ""); !stop.empty()) {
      job.page_failure = "page " + std::to_string(index) + ": the model's answer is not whole (" + stop + ")";
      break;
    }
    AVPS_TRY_ASSIGN(std::string text, exchange->response_text(c));
    Result<PageAnswer> page_answer = read_page_answer(text, skill.name);
    if (!page_answer) {
      job.page_failure = "page " + std::to_string(index) + ": " + page_answer.error().message;
      break;
    }
    json answer = std::move(page_answer->answer);
    const bool more = page_answer->more;
    carry = std::move(page_answer->carry);
    AVPS_TRY_ASSIGN(std::string carry_text, core::canonical_json(carry));
    if (carry_text.size() > k_max_carry_bytes) {
      job.page_failure = "page " + std::to_string(index) + ": its carry is " + std::to_string(carry_text.size()) +
                         " bytes, more than the " + std::to_string(k_max_carry_bytes) + " a page may pass on";
      break;
    }
    for (const skills::SkillOutput* output : outputs) {
      json content = output_content(answer, output->kind, outputs.size());
      if (content.is_object() && !content.empty()) {
        if (Result<void> merged = merge_page(assembled, output->kind, std::move(content)); !merged) {
          job.page_failure = "page " + std::to_string(index) + ": " + merged.error().message;
          break;
        }
      }
    }
    if (!job.page_failure.empty()) {
      break;
    }
    const bool last = paging.input.empty() ? !more : index >= input_pages;
    if (last) {
      break;
    }
  }
  // job.call stands for the whole attempt: the sums of the pages' costs and worst cases, the
  // largest request.
  job.call.response["cost_micro_usd"] = cost;
  job.call.response["elapsed_ms"] = elapsed_ms;
  job.call.route.worst_case_micro_usd = worst_case;
  job.call.request_size = largest_request;
  job.paged_output = outputs.size() == 1 ? (assembled.empty() ? json::object() : assembled.begin().value())
                                        : assembled;
  return Flow::go_on;
}

// Parse → schema → gate → record → log → policy, for one attempt of one job.
Result<Flow> Impl::finish_attempt(const skills::SkillDef& skill, Job& job) {
  gates::GateResult gate;
  gates::Outputs outputs;
  std::string model;
  int64_t cost = 0;
  if (skill.executor == skills::Executor::model) {
    model = job.call.route.model;
    cost = job.call.response.value("cost_micro_usd", int64_t{0});
    Result<json> parsed = json();
    if (skill.paging && !job.page_failure.empty()) {
      parsed = make_error(ErrorCode::invalid_argument, job.page_failure);
    } else if (skill.paging) {
      parsed = job.paged_output;
    } else if (const std::string stop = job.call.response.value("stop_reason", ""); !stop.empty()) {
      // A refusal, a cut-off or a blocked prompt: whatever text came is not an answer.
      parsed = make_error(ErrorCode::invalid_argument, "the model's answer is not whole (" + stop + ")");
    } else {
      AVPS_TRY_ASSIGN(std::string text, exchange->response_text(job.call));
      parsed = core::parse_json(text, skill.name + " output");
      if (!parsed) {
        parsed = make_error(ErrorCode::invalid_argument, "the output is not valid JSON: " + parsed.error().message);
      }
    }
    if (!parsed) {
      gate.verdict = gates::Verdict::fail;
      gate.reasons = {parsed.error().message};
    } else {
      const std::vector<const skills::SkillOutput*> model_outputs = skill.model_outputs();
      for (const skills::SkillOutput* model_output : model_outputs) {
        const skills::SkillOutput& output = *model_output;
        json content = output_content(*parsed, output.kind, model_outputs.size());
        AVPS_TRY_ASSIGN(const artifacts::FaceCodec* c, codec(output.kind));
        if (content.is_object() && carries_gate(*c)) {
          content["gate"] = gates::GateResult{}.to_json();  // replaced below: the model's verdict is not trusted
        }
        for (const core::SchemaIssue& issue : c->schema().validate(content)) {
          gate.verdict = gates::Verdict::fail;
          gate.reasons.push_back(output.kind + " " + issue.to_string());
        }
        outputs[output.kind] = content;
      }
    }
  } else {
    AVPS_TRY_ASSIGN(outputs, run_builtin(skill, job));
  }
  if (gate.reasons.empty()) {
    // Post steps: the next WORLD_STATE is the STATE_DIFF applied in code, never the model's word.
    if (std::find(skill.post_steps.begin(), skill.post_steps.end(), "apply_state_diff") != skill.post_steps.end() &&
        outputs.count("STATE_DIFF") && job.in.world_before) {
      Result<json> applied = builtins::apply_state_diff(*job.in.world_before, outputs["STATE_DIFF"]);
      if (applied) {
        outputs["WORLD_STATE"] = *applied;
      }
    }
    EngineGateContext gate_context(e.m_project, latest_shared(), kind_generation(), gate_config(job.ctx),
                                   job.in.world_before);
    Result<gates::GateResult> evaluated = gates::evaluate_gate_outputs(skill.raw, outputs, gate_context);
    if (!evaluated && evaluated.error().code == ErrorCode::corruption) {
      // A file the gate reads no longer matches the ledger (edited by hand during the run): not
      // the step's failure but tampering, which Engine::run makes the integrity stop.
      return std::move(evaluated).error();
    }
    if (!evaluated) {
      gate.verdict = gates::Verdict::fail;
      gate.reasons = {"the gate could not be evaluated: " + evaluated.error().message};
    } else {
      gate = *evaluated;
      AVPS_TRY(run_engine_checks(job, outputs, gate));
    }
    if (gate.verdict != gates::Verdict::fail && skill.name == role("world_state") && !outputs.count("WORLD_STATE")) {
      gate.verdict = gates::Verdict::fail;
      gate.reasons.push_back("the STATE_DIFF does not apply to the world state before " + job.ctx.scene_id);
    }
  }

  // A revision must change something (issue 13): one whose every output equals a recorded version
  // of its target (gate aside) is not a new version but a FAIL of this attempt, which the loop's
  // policy escalates or stops; an output of a revision that equals one is not written again.
  RevisionCheck revision;
  // A built-in's findings are its own re-check (budget-gates after a raised cap), not a revision.
  const json& carried = skill.executor == skills::Executor::model ? job.findings : json::array();
  if (!job.collect && is_revision(carried, job.revision_for, job.extra)) {
    AVPS_TRY(refresh_index());
    gates::Outputs compared;
    std::map<std::string, std::vector<PriorVersion>> priors;
    const WrittenBy writer{job.step, job.attempt};
    for (const auto& [kind, content] : outputs) {
      if (kind == "WORLD_STATE") {
        continue;  // made from the STATE_DIFF in code: the diff is what the revision changes
      }
      compared[kind] = content;
      const std::vector<ledger::ArtifactRecord>& versions = versions_by_key[kind + "/" + target_for(kind, job.ctx)];
      const ledger::ArtifactRecord* replaced = nullptr;  // the latest version but this attempt's own
      for (const ledger::ArtifactRecord& r : versions) {
        auto by = record.written_by.find(r.name);
        if (by == record.written_by.end() || by->second != writer) {
          replaced = &r;
        }
      }
      // The version this step set out to revise: the one before its first write (what the judge
      // judged, or its own failed attempt saw), else the latest.
      const ledger::ArtifactRecord* revised = replaced;
      for (size_t i = 0; i < versions.size(); ++i) {
        auto by = record.written_by.find(versions[i].name);
        if (by != record.written_by.end() && by->second.step == job.step) {
          revised = i > 0 ? &versions[i - 1] : nullptr;
          break;
        }
      }
      for (const ledger::ArtifactRecord& r : versions) {
        auto by = record.written_by.find(r.name);
        if (by != record.written_by.end() && by->second == writer) {
          continue;  // this very attempt's own write, before an interruption
        }
        // What it replaces (the latest version), what it set out to revise and what this step
        // wrote since (going back within the loop is no change either); a step on other inputs
        // may come to what an earlier one wrote (a plan re-derived from an edited lock,
        // simplified again as before).
        const bool this_step = by != record.written_by.end() && by->second.step == job.step;
        if (&r != replaced && &r != revised && !this_step) {
          continue;
        }
        AVPS_TRY_ASSIGN(auto loaded, by_name(r.name));
        if (loaded) {
          priors[kind].push_back({r.name, loaded->content()});
        }
      }
    }
    revision = check_revision(compared, [&priors](const std::string& kind) { return priors[kind]; });
    if (revision.unchanged) {
      gate.verdict = gates::Verdict::fail;
      gate.reasons.insert(gate.reasons.begin(), revision.reason);
    }
  }

  // Record the outputs — a failing version too, when it is a valid artifact, so the revision has
  // something to follow — then the step's RUN_LOG row.
  std::string written;
  if (!job.collect && !revision.unchanged) {
    bool recordable = !outputs.empty();
    for (const auto& [kind, content] : outputs) {
      json final_content = content;
      AVPS_TRY_ASSIGN(const artifacts::FaceCodec* c, codec(kind));
      if (carries_gate(*c)) {
        final_content["gate"] = gate.to_json();
      }
      recordable = recordable && c->schema().validate(final_content).empty();
    }
    json details = {{"inputs", job.in.fingerprints}, {"step", job.step}, {"attempt", job.attempt}};
    if (!job.ctx.scene_id.empty() && skill.name == role("world_state")) {
      details["scene"] = job.ctx.scene_id;
    }
    std::string kept_diff;  // a STATE_DIFF equal to its latest version, which stands for it
    for (const auto& [kind, content] : outputs) {
      if (!recordable) {
        break;
      }
      if (revision.as_latest.count(kind)) {
        written += (written.empty() ? "" : " ") + revision.identical[kind];  // the revision left it as it was
        continue;
      }
      // Routing decisions get a new version only when the allocation changed (DESIGN §3).
      if (kind == "ROUTING_DECISION") {
        AVPS_TRY_ASSIGN(auto previous, latest(kind, "PROJECT"));
        if (previous && without_gate(previous->content()) == without_gate(content)) {
          written += (written.empty() ? "" : " ") + previous->record.name;
          continue;
        }
      }
      if (kind == "WORLD_STATE" && gate.verdict == gates::Verdict::fail) {
        continue;  // the world moves on only by a diff that passed
      }
      if (job.reuse_identical) {
        AVPS_TRY_ASSIGN(auto previous, latest(kind, target_for(kind, job.ctx)));
        if (previous && without_gate(previous->content()) == without_gate(content)) {
          written += (written.empty() ? "" : " ") + previous->record.name;
          continue;
        }
      }
      bool changed = false;
      json written_details = details;
      if (kind == "WORLD_STATE" && !kept_diff.empty()) {
        // The world is the one before with the diff kept applied (the gate's world_state.chain
        // finds the diff among the world's inputs when none was written beside it).
        written_details["inputs"].push_back({{"kind", "STATE_DIFF"}, {"names", {kept_diff}}});
      }
      const int written_before = outcome.artifacts_written;
      AVPS_TRY_ASSIGN(std::string name,
                      write_output(skill, kind, target_for(kind, job.ctx), content, gate, written_details, changed));
      if (kind == "STATE_DIFF" && outcome.artifacts_written == written_before) {
        kept_diff = name;
      }
      if (kind == "WORLD_STATE") {
        record.world_after[job.ctx.scene_id] = name;
      }
      job.changed_upstream = job.changed_upstream || changed;
      written += (written.empty() ? "" : " ") + name;
    }
  }
  job.outputs = outputs;
  job.gate = gate;
  job.verdict = std::string(gates::verdict_name(gate.verdict));

  ledger::LogRow row;
  row.skill_name = skill.name;
  row.scene_id = job.ctx.scene_id;
  row.shot_id = job.ctx.shot_id;
  row.model_used = model;
  row.tier = job.tier;
  row.estimated_cost = skill.executor == skills::Executor::model
                           ? governance::usd_decimal(job.call.route.worst_case_micro_usd)
                           : "";
  row.actual_cost = governance::usd_decimal(cost);
  if (skill.executor == skills::Executor::model) {
    row.duration_s = duration_s(job.call.response);
  }
  row.outcome = job.verdict;
  row.regen_count = std::to_string(job.attempt - 1);
  row.artifact_output = written;
  row.notes = !gate.reasons.empty() ? gate.reasons.front()
              : skill.executor == skills::Executor::model
                  ? "routed: " + job.call.route.reason + "; request " + std::to_string(job.call.request_size) + " bytes"
                  : "";
  json body = {{"step", job.step},   {"loop", job.loop},           {"skill", skill.name},
               {"attempt", job.attempt}, {"tier", job.tier},        {"escalations", job.escalations},
               {"verdict", job.verdict}, {"reasons", gate.reasons}, {"outputs", written}};
  if (!job.via_tier.empty()) {
    body["via_tier"] = job.via_tier;
    body["via_escalations"] = job.via_escalations;
  }
  if (job.reroutes > 0) {
    body["reroutes"] = job.reroutes;
  }
  if (skill.executor == skills::Executor::model) {
    body["request_bytes"] = job.call.request_size;
    body["model"] = model;
  }
  if (skill.paging) {
    body["pages"] = job.pages;
  }
  if (!job.revision_for.is_null()) {
    body["revision_for"] = job.revision_for;
  }
  for (auto& [k, v] : job.log_extra.items()) {
    body[k] = v;
  }
  if (revision.unchanged) {
    body["identical_to"] = revision.identical;  // kind -> the recorded version the revision equals
  }
  core::crash_point("engine.before_step_finished");  // the outputs recorded, the step not yet
  // A judge-only attempt replayed on resume was logged before the interruption.
  if (!(job.collect && record.steps.count(job.step))) {
    // Deferred: nothing outside the ledger is derived from a verdict before the next sync (the
    // next call's intents, an artifact's intent, a hard stop, the run's end); a power cut before
    // it leaves what a kill at engine.before_step_finished leaves (docs/formats/ledger.md).
    AVPS_TRY(e.m_project.ledger().append(ledger::EventDraft{.kind = "step.finished", .body = body, .row = row},
                                         ledger::Sync::deferred));
  }
  note_firing(record, body);
  StepSummary kept = make_summary(step_summary(body));
  record.steps[job.step] = kept;
  record.loops[job.loop] = std::move(kept);  // the same summary as the step's (RecordFold::add)
  step_changed(job.step, job.loop);
  note_loop_verdict(record, job.loop, job.verdict);  // as record.cpp does when it reads this event back
  if (!job.revision_for.is_null() && skill.settles(job.verdict)) {
    record.revisions_done.insert(job.revision_for.value("loop", "") + "#" +
                                 std::to_string(job.revision_for.value("attempt", 0)));
  }
  AVPS_TRY(report({.kind = Progress::Kind::verdict,
                   .skill = skill.name,
                   .tier = job.tier,
                   .verdict = job.verdict,
                   .attempt = job.attempt,
                   .text = skill.name + job.ctx.label() + ": " + job.verdict + (written.empty() ? "" : " -> " + written)},
                  job.ctx));

  if (job.collect) {
    job.state = JobState::done;
    return Flow::go_on;
  }
  if (gate.verdict == gates::Verdict::stop) {
    job.state = JobState::done;
    // STOP is never revised away.
    return hard_stop(skill.name, "gate", job.loop, job.ctx, json(gate.reasons),
                     skill.name + job.ctx.label() + " stopped: " +
                         (gate.reasons.empty() ? "STOP verdict" : gate.reasons.front()));
  }
  // PASS and WARN proceed, and FIX unless the skill's on_fix acts on it (SkillDef::settles).
  if (skill.settles(job.verdict)) {
    job.state = JobState::done;
    return Flow::go_on;
  }
  job.findings = json(gate.reasons);
  return apply_policy(skill, job);
}

// ---- the walk -------------------------------------------------------------------------------

Result<Flow> Impl::run_skill(const skills::SkillDef& skill, const std::vector<Context>& contexts) {
  std::vector<Job> jobs;
  jobs.reserve(contexts.size());  // a Job is large: thousands of shots are not moved again and again
  for (const Context& context : contexts) {
    if (!context.scope.empty() && context.scope != skill.scope && !(skill.scope == "project")) {
      continue;  // a per-entity step runs for the entities of its class
    }
    AVPS_TRY_ASSIGN(bool runs, condition(skill.runs_when, context));
    if (!runs) {
      continue;
    }
    Job job;
    job.ctx = context;
    job.ctx.scope = skill.scope;
    if (!context.graph_step.empty()) {
      job.log_extra["graph_step"] = context.graph_step;  // where the step stood (Impl::writer_rank)
    }
    jobs.push_back(std::move(job));
  }
  if (jobs.empty()) {
    return Flow::go_on;
  }
  AVPS_TRY_ASSIGN(Flow flow, run_jobs(skill, jobs));
  for (const Job& job : jobs) {
    if (job.state == JobState::waiting && flow == Flow::go_on) {
      AVPS_TRY(report({.kind = Progress::Kind::wait,
                       .skill = skill.name,
                       .text = skill.name + job.ctx.label() + ": waiting for " + job.in.missing},
                      job.ctx));
      ++outcome.steps_waiting;
    }
  }
  return flow;
}

Result<std::vector<Context>> Impl::entity_contexts() {
  AVPS_TRY_ASSIGN(auto breakdown, latest("BREAKDOWN", ""));
  if (!breakdown) {
    return std::vector<Context>{};
  }
  static const std::map<std::string, std::string> k_scope_by_prefix = {
      {"CHAR_", "character"}, {"SET_", "set"}, {"VOICE_", "voice"}};
  std::vector<Context> out;
  std::set<std::string> seen;
  for (const json& row : rows_of(breakdown->content())) {
    for (const json& requirement : row.value("lock_requirements", json::array())) {
      std::string text = requirement.get<std::string>();
      for (const auto& [prefix, scope] : k_scope_by_prefix) {
        if (text.rfind(prefix, 0) == 0 && seen.insert(text).second) {
          Context c;
          c.entity_id = text.substr(prefix.size());
          c.scope = scope;
          out.push_back(c);
        }
      }
    }
  }
  return out;
}

Result<void> Impl::refresh_scenes() {
  scenes.clear();
  scene_order.clear();
  AVPS_TRY_ASSIGN(auto loaded, latest("SCENES", ""));
  if (loaded) {
    for (const json& row : rows_of(loaded->content())) {
      scenes.push_back(row.value("scene_id", ""));
      scene_order.emplace(scenes.back(), static_cast<int>(scenes.size()) - 1);
    }
  }
  record_changed();  // the walk's ranks of scenes (writer_rank) may have moved
  AVPS_TRY_ASSIGN(auto breakdown, latest("BREAKDOWN", ""));
  entity_scenes = breakdown ? entity_scenes_of(breakdown->content()) : EntityScenes{};
  return ok();
}

std::vector<PlanStop> Impl::open_plan_stops() const {
  std::vector<PlanStop> stops;
  const skills::StageGraph* graph = e.m_registry.stage_graph();
  for (const auto& [loop, stop] : record.open_stops) {
    stops.push_back(plan_stop(stop.value("seq", int64_t{0}), held_scene(stop), held_entity(stop), false,
                              stop.value("graph_step", ""),
                              stop.value("skill", ""), stop.value("reason", ""), *graph));
  }
  std::sort(stops.begin(), stops.end(), [](const PlanStop& a, const PlanStop& b) { return a.seq < b.seq; });
  return stops;
}

std::string Impl::graph_step_of(const std::string& skill, const Context& context) const {
  if (!context.graph_step.empty()) {
    return context.graph_step;
  }
  const skills::StageGraph* graph = e.m_registry.stage_graph();
  if (!graph) {
    return "";
  }
  for (const skills::Phase& phase : graph->phases) {
    if (phase.name != walking_phase || phase.steps.empty()) {
      continue;
    }
    for (const skills::GraphStep& step : phase.steps) {
      if (step.skill == skill) {
        return step.id;
      }
    }
    return phase.steps.back().id;
  }
  for (const skills::Phase& phase : graph->phases) {
    for (const skills::GraphStep& step : phase.steps) {
      if (step.skill == skill) {
        return step.id;
      }
    }
  }
  return "";
}

void Impl::sync_plan() {
  const skills::StageGraph* graph = e.m_registry.stage_graph();
  std::vector<PlanStop> open = open_plan_stops();
  auto seqs = [](const std::vector<PlanStop>& stops) {
    std::vector<int64_t> out;
    for (const PlanStop& s : stops) {
      out.push_back(s.seq);
    }
    return out;
  };
  if (!plan) {
    plan.emplace(*graph, scenes, std::move(open), entity_scenes);
  } else if (seqs(open) != seqs(plan->stops())) {
    plan->set_stops(std::move(open));
  }
}

Impl::PassEnd Impl::end_pass(Flow flow) {
  pass_held = false;
  switch (flow) {
    case Flow::restart:
      return PassEnd::restart;
    case Flow::interrupted:
      return PassEnd::interrupted;
    case Flow::go_on:
      sync_plan();  // a stop resolved by its step holds nothing any more
      return PassEnd::done;
    case Flow::stop:
      break;
  }
  sync_plan();
  if (plan->whole_project()) {
    return PassEnd::whole_stop;
  }
  outcome.message.clear();  // the stop stays in record.open_stops: the run's end lists it
  pass_held = true;
  return PassEnd::done;
}

Result<bool> Impl::may_run(const std::string& step, const Context& context) {
  PlanUnit unit;
  unit.step = step;
  unit.scene = context.scene_id;
  unit.entity = context.entity_id;
  if (plan->may_run(unit)) {
    return true;
  }
  const PlanStop* stop = plan->blocker(unit);
  const std::string what = !context.scene_id.empty()    ? context.scene_id
                           : !context.entity_id.empty() ? context.entity_id
                                                        : std::string("the project");
  if (stop && held_noted.insert(what).second) {
    AVPS_TRY(report({.kind = Progress::Kind::note,
                     .scene_id = context.scene_id,
                     .text = "STOP-" + std::to_string(stop->seq) + " holds " + what + " from " + plan->phase_of(step) +
                             " on; the work that does not depend on it goes on"}));
  }
  return false;
}

// Runs the steps of one phase for `contexts`, each where the plan lets it.
Result<Impl::PassEnd> Impl::run_phase(const skills::Phase& phase, const std::vector<Context>& contexts) {
  for (const skills::GraphStep& step : phase.steps) {
    if (!step.action.empty()) {
      continue;  // generate_media runs inside the production waves
    }
    const skills::SkillDef* skill = e.m_registry.find(step.skill);
    if (!skill) {
      return make_error(ErrorCode::configuration, "step " + step.id + " names the unknown skill " + step.skill);
    }
    auto first = step_index.find(skill->name);
    auto here = graph_step_index.find(step.id);
    const bool later_step = first != step_index.end() && here != graph_step_index.end() && here->second != first->second;
    std::vector<Context> pending;
    for (const Context& context : contexts) {
      AVPS_TRY_ASSIGN(bool runs, may_run(step.id, context));
      if (runs) {
        pending.push_back(context);
        if (later_step) {
          pending.back().graph_step = step.id;
        }
      }
    }
    // A stop ends the step's round of calls; the contexts it does not hold run again (those done
    // are up to date), until no stop is raised or none is left.
    while (!pending.empty()) {
      AVPS_TRY_ASSIGN(Flow flow, run_skill(*skill, pending));
      if (PassEnd end = end_pass(flow); end != PassEnd::done) {
        return end;
      }
      if (!pass_held) {
        break;
      }
      std::vector<Context> rest;
      for (const Context& context : pending) {
        if (!plan->blocker({.step = step.id, .scene = context.scene_id, .entity = context.entity_id})) {
          rest.push_back(context);
        }
      }
      if (rest.size() == pending.size()) {
        break;
      }
      pending = std::move(rest);
    }
  }
  return PassEnd::done;
}

// The walk, in three passes of the stage graph (StageGraph::walk_passes): the project-wide phases;
// then scene by scene in story order the scene phases (each scene's world state comes from the
// scene before); then scene by scene production. The plan says what a stop holds; everything it
// does not hold goes on.
Result<Impl::PassEnd> Impl::walk(const skills::StageGraph& graph) {
  auto stop_here = [&](const std::string& name) { return !options.until.empty() && options.until == name; };
  auto scene_context = [](const std::string& scene) {
    Context c;
    c.scene_id = scene;
    c.scope = "scene";
    return c;
  };
  // Made again whenever the scenes change: the project-wide phases write them.
  auto replan = [&]() -> Result<void> {
    AVPS_TRY(refresh_scenes());
    plan.reset();
    sync_plan();
    return ok();
  };

  const std::vector<int> groups = graph.walk_passes();
  AVPS_TRY(replan());
  size_t i = 0;
  for (; i < graph.phases.size() && groups[i] == 0; ++i) {
    const skills::Phase& phase = graph.phases[i];
    std::vector<Context> contexts;
    if (phase.fan_out == "once") {
      contexts.push_back(Context{});
    } else if (phase.fan_out == "per_entity") {
      AVPS_TRY_ASSIGN(contexts, entity_contexts());
    } else if (phase.fan_out == "per_scene") {
      for (const std::string& s : scenes) {
        if (options.scene.empty() || options.scene == s) {
          contexts.push_back(scene_context(s));
        }
      }
    }
    AVPS_TRY(report({.kind = Progress::Kind::phase, .phase = phase.name, .text = "phase " + phase.name}));
    AVPS_TRY_ASSIGN(PassEnd end, run_phase(phase, contexts));
    AVPS_TRY(replan());
    if (end != PassEnd::done || stop_here(phase.name)) {
      return end;
    }
  }

  std::vector<const skills::Phase*> scene_phases;
  std::vector<const skills::Phase*> production;
  for (size_t k = i; k < graph.phases.size(); ++k) {
    (groups[k] == 2 ? production : scene_phases).push_back(&graph.phases[k]);
  }
  bool until_in_scene_phases = false;
  for (const skills::Phase* p : scene_phases) {
    until_in_scene_phases = until_in_scene_phases || stop_here(p->name);
  }
  // Scene by scene, in story order: validation, continuity, planning. `--scene S` walks the
  // scenes before S too: S's world state comes from theirs.
  for (const std::string& s : scenes) {
    for (const skills::Phase* p : scene_phases) {
      AVPS_TRY(report(
          {.kind = Progress::Kind::phase, .phase = p->name, .scene_id = s, .text = "phase " + p->name + " " + s}));
      AVPS_TRY_ASSIGN(PassEnd end, run_phase(*p, {scene_context(s)}));
      if (end != PassEnd::done) {
        return end;
      }
      if (stop_here(p->name)) {
        break;
      }
    }
    if (!options.scene.empty() && options.scene == s) {
      break;
    }
  }
  if (until_in_scene_phases) {
    return PassEnd::done;
  }

  // Production, scene by scene: cost loop, proxy waves, cost loop, final waves. A scene whose
  // production a stop holds (a frozen shot, the scene's cap, a stop in its scene phases) is
  // passed by; the next one goes on.
  for (const std::string& s : scenes) {
    if (!options.scene.empty() && options.scene != s) {
      continue;
    }
    for (const skills::Phase* p : production) {
      if (p->steps.empty()) {
        continue;
      }
      AVPS_TRY(report(
          {.kind = Progress::Kind::phase, .phase = p->name, .scene_id = s, .text = "phase " + p->name + " " + s}));
      PassEnd end = PassEnd::done;
      if (p->fan_out != "per_shot") {
        AVPS_TRY_ASSIGN(end, run_phase(*p, {scene_context(s)}));
      } else {
        // The waves run every step of the phase for every shot: they run when the plan lets the
        // phase's first step run for the scene.
        AVPS_TRY_ASSIGN(bool runs, may_run(p->steps.front().id, scene_context(s)));
        if (!runs) {
          break;
        }
        AVPS_TRY_ASSIGN(Flow flow, produce(*p, s));
        end = end_pass(flow);
      }
      if (end != PassEnd::done) {
        return end;
      }
      if (stop_here(p->name)) {
        break;
      }
    }
  }
  return PassEnd::done;
}

std::vector<backends::BackendSpec> backend_specs(const governance::ModelsFile& models, const fs::path& project_dir) {
  std::vector<backends::BackendSpec> specs;
  for (const governance::Model& m : models.models()) {
    specs.push_back({.model_id = m.id,
                     .backend = m.backend,
                     .endpoint = m.endpoint,
                     .api_key_env = m.api_key_env,
                     .provider_model = m.provider_model,
                     .preset = m.preset,
                     .options = m.options,
                     .generates = m.capabilities.image_out || m.capabilities.video_out,
                     .image_out = m.capabilities.image_out,
                     .video_out = m.capabilities.video_out,
                     .text = m.capabilities.text,
                     .project_dir = project_dir});
  }
  return specs;
}

Result<RunOutcome> run_production(project::Project& project, const RunOptions& options,
                                  const BackendsFactory& make_backends, Observer& observer) {
  const fs::path& dir = project.dir();
  // What a person wrote goes into requests as text: not UTF-8 is refused here, naming the byte,
  // before anything is recorded (it would otherwise fail the first request that carries it).
  if (Result<std::string> brief = core::read_text_file(project.config().brief);
      !brief && brief.error().code != ErrorCode::not_found) {
    return std::move(brief).error();
  } else if (brief) {
    // Its cast becomes entity ids (CHAR_<ID>_LOCK): a name that cannot become one would be lost
    // without a word, so it is named here instead, with the line to fix.
    if (std::vector<std::string> problems = governance::brief_name_problems(*brief); !problems.empty()) {
      std::string message = project.config().brief.string() + ": " + std::to_string(problems.size()) +
                            " name(s) of its cast cannot become entity ids:";
      for (const std::string& problem : problems) {
        message += "\n  " + problem;
      }
      return make_error(ErrorCode::invalid_argument, message);
    }
  }
  AVPS_TRY_ASSIGN(skills::Registry registry, skills::Registry::load(project::data_dir(), &dir));
  // A project's skill, schema or stage graph that breaks a rule is refused before anything runs,
  // never left out or half used (`avps skills validate DIR` says the same, with every problem).
  if (std::vector<core::Violation> problems = registry.validate(); !problems.empty()) {
    std::string message = dir.string() + ": the skills, schemas and stage graph do not validate (" +
                          std::to_string(problems.size()) + " problem(s); `avps skills validate " + dir.string() +
                          "` lists them):";
    for (size_t i = 0; i < problems.size() && i < 20; ++i) {
      message += "\n  " + problems[i].subject + ": " + problems[i].message + "  [" + problems[i].rule + "]";
    }
    return make_error(ErrorCode::configuration, message);
  }
  AVPS_TRY_ASSIGN(governance::ModelsFile models,
                  governance::ModelsFile::load(project::data_dir(), dir, project.config()));
  AVPS_TRY_ASSIGN(std::unique_ptr<backends::BackendRegistry> backends, make_backends(models, project.config()));
  governance::Router router(std::move(models));
  ledger::Ledger& ledger = project.ledger();
  AVPS_TRY_ASSIGN(governance::Overrides overrides, governance::Overrides::read(ledger));
  AVPS_TRY(ledger.begin_run("run", {{"until", options.until}, {"scene", options.scene}, {"jobs", options.jobs}}));
  const project::Budget configured = project.config().budget;
  governance::BudgetGovernor governor(ledger, overrides.effective_budget(configured),
                                      [&overrides, configured](const std::string& scene, const std::string& shot) {
                                        return overrides.caps_for(configured, scene, shot);
                                      });
  Engine engine(project, registry, *backends, router, governor, observer);
  Result<RunOutcome> outcome = engine.run(options);
  const std::string ended = !outcome                                 ? "ERROR"
                            : outcome->exit == ExitCode::hard_stop   ? "STOP"
                            : outcome->exit == ExitCode::interrupted ? "INTERRUPTED"
                                                                     : "DONE";
  core::diag::debug("run ended: " + ended);
  std::ignore = ledger.end_run(ended, outcome ? json{{"calls_made", outcome->calls_made},
                                                     {"calls_replayed", outcome->calls_replayed}}
                                              : json{{"error", outcome.error().message}});
  return outcome;
}

Engine::Engine(project::Project& project, const skills::Registry& registry, const backends::BackendRegistry& backends,
               const governance::Router& router, governance::BudgetGovernor& governor, Observer& observer)
    : m_project(project), m_registry(registry), m_backends(backends), m_router(router), m_governor(governor),
      m_observer(observer) {}

struct StaleShotsRecord::Fold {
  RecordFold fold{RecordParts::renders};
};
StaleShotsRecord::StaleShotsRecord() : m_fold(std::make_unique<Fold>()) {}
StaleShotsRecord::~StaleShotsRecord() = default;
StaleShotsRecord::StaleShotsRecord(StaleShotsRecord&&) noexcept = default;
StaleShotsRecord& StaleShotsRecord::operator=(StaleShotsRecord&&) noexcept = default;
void StaleShotsRecord::add(const ledger::Event& e) { m_fold->fold.add(e); }
std::string StaleShotsRecord::save_bytes() const {
  core::ByteWriter out;
  m_fold->fold.save(out);
  return out.take();
}
std::optional<StaleShotsRecord> StaleShotsRecord::restore_bytes(std::string_view bytes) {
  std::optional<RecordFold> fold = RecordFold::restore_bytes(bytes);
  if (!fold || fold->all()) {
    return std::nullopt;
  }
  StaleShotsRecord record;
  record.m_fold->fold = std::move(*fold);
  return record;
}

Result<std::vector<StaleShot>> Engine::stale_shots(const std::vector<ledger::Event>* events) {
  StaleShotsRecord record;
  if (events != nullptr) {
    for (const ledger::Event& e : *events) {
      record.add(e);
    }
    return stale_shots(std::move(record));
  }
  AVPS_TRY(m_project.ledger().each_event({}, [&](ledger::Event&& e) -> Result<void> {
    record.add(e);
    return ok();
  }));
  return stale_shots(std::move(record));
}

Result<std::vector<StaleShot>> Engine::stale_shots(StaleShotsRecord record) {
  Impl impl(*this, RunOptions{});
  impl.record = std::move(record.m_fold->fold).finish();
  impl.record_changed();
  if (const skills::StageGraph* graph = m_registry.stage_graph()) {
    impl.index_graph(*graph);
  }
  return impl.stale_shots();
}

namespace {

// An engine that calls nothing (no backend; a router and a governor only because an engine has
// them) over the project's skills, for `use`.
template <typename Use>
Result<std::vector<StaleShot>> with_reading_engine(project::Project& project, const skills::Registry* registry,
                                                   Use use) {
  std::optional<skills::Registry> loaded;
  if (registry == nullptr) {
    AVPS_TRY_ASSIGN(loaded, skills::Registry::load(project::data_dir(), &project.dir()));
    registry = &*loaded;
  }
  AVPS_TRY_ASSIGN(governance::ModelsFile models,
                  governance::ModelsFile::load(project::data_dir(), project.dir(), project.config()));
  std::unique_ptr<backends::BackendRegistry> backends = backends::BackendRegistry::of({});
  governance::Router router(std::move(models));
  governance::BudgetGovernor governor(project.ledger(), project.config().budget);
  struct Silent : Observer {
    void progress(const Progress&) override {}
  } silent;
  Engine engine(project, *registry, *backends, router, governor, silent);
  return use(engine);
}

}  // namespace

Result<std::vector<StaleShot>> stale_shots(project::Project& project, const std::vector<ledger::Event>* events,
                                           const skills::Registry* registry) {
  return with_reading_engine(project, registry, [&](Engine& engine) { return engine.stale_shots(events); });
}

Result<std::vector<StaleShot>> stale_shots(project::Project& project, StaleShotsRecord record,
                                           const skills::Registry* registry) {
  return with_reading_engine(project, registry, [&](Engine& engine) { return engine.stale_shots(std::move(record)); });
}

Result<RunOutcome> Engine::run(const RunOptions& options) {
  const skills::StageGraph* graph = m_registry.stage_graph();
  if (!graph) {
    return make_error(ErrorCode::configuration, "the stage graph is not usable; run `avps skills validate`");
  }
  if (!options.until.empty()) {
    bool known = false;
    for (const skills::Phase& p : graph->phases) {
      known = known || p.name == options.until;
    }
    if (!known) {
      return make_error(ErrorCode::invalid_argument, "--until " + options.until + ": no such phase in the stage graph");
    }
  }
  Impl impl(*this, options);
  // The files must be what the ledger vouches for before anything is written or sent. The check
  // reads only, so it runs on a thread of its own, on a read-only ledger of its own (one snapshot
  // of what the writer committed, which nothing changes until the check is taken): beside the
  // restore of the run's record, then beside the walk, whose reads decide nothing before the
  // first write, which waits for the check (below). At 500 scenes it is a good part of a resume.
  // The mirrors are brought up to date first, as the writer's own verify() would (a lag is a
  // transient finding, and a check with any finding leaves no mark).
  AVPS_TRY(m_project.ledger().flush());
  std::future<Result<Impl::IntegrityFindings>> integrity_found =
      std::async(std::launch::async, [dir = m_project.dir()]() -> Result<Impl::IntegrityFindings> {
        const core::SystemClock clock;
        AVPS_TRY_ASSIGN(std::unique_ptr<ledger::Ledger> reader,
                        ledger::Ledger::open(dir, ledger::OpenMode::read_only, clock));
        Impl::IntegrityFindings found = Impl::find_integrity_violations(dir, *reader, Impl::IntegrityScope::since_mark);
        // What the check read (the artifact index, the mark, every file's identity) was allocated in
        // this thread's own arena, which the walk does not reuse and the allocator does not give
        // back at once: its pages stayed resident under the walk's own peak (glibc's malloc, 500
        // scenes: a resume's peak RSS 154 MB, 142 with them given back; bench/README.md).
        reader.reset();
        core::give_back_free_memory();
        return found;
      });
  // From the fold checkpoint the last run left, when it is usable, and the events since; with
  // verify_by_name (the e2e tests) checked against a fold of every event as well.
  Result<Record> restored = read_record(
      m_project, options.verify_by_name ? RestoredRecordCheck::against_whole_fold : RestoredRecordCheck::none);
  if (!restored) {
    return std::move(restored).error();
  }
  impl.record = std::move(*restored);
  impl.record_changed();
  // The check's answer, taken once: by the first write (the ledger's hold), or by the run.
  std::optional<Result<Impl::IntegrityFindings>> integrity;
  std::mutex integrity_taken;
  auto take_integrity = [&]() -> Result<Impl::IntegrityFindings>& {
    std::lock_guard<std::mutex> lock(integrity_taken);
    if (!integrity) {
      integrity.emplace(integrity_found.get());
    }
    return *integrity;
  };
  // Whether it is in and found nothing, without waiting for it.
  auto integrity_known_clean = [&]() {
    {
      std::lock_guard<std::mutex> lock(integrity_taken);
      if (!integrity && integrity_found.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        return false;
      }
    }
    const Result<Impl::IntegrityFindings>& found = take_integrity();
    return found && found->found.empty();
  };
  // Every way out of here ends the hold and the asking, which name these locals.
  struct EndHoldOnExit {
    ledger::Ledger& ledger;
    Impl& impl;
    ~EndHoldOnExit() {
      ledger.open_writes();
      impl.integrity_known_clean = nullptr;
    }
  } end_hold_on_exit{m_project.ledger(), impl};
  // Acts on the check (Impl::check_integrity: its mark, or the integrity stop), once.
  bool settled = false;
  auto settle_integrity = [&]() -> Result<Flow> {
    if (settled) {
      return Flow::go_on;
    }
    settled = true;
    impl.integrity_known_clean = nullptr;
    Result<Impl::IntegrityFindings>& found = take_integrity();
    m_project.ledger().open_writes();
    impl.release_progress(found && found->found.empty());
    if (!found) {
      return found.error();
    }
    return impl.check_integrity(Impl::IntegrityScope::since_mark, std::move(*found));
  };
  // Beside the walk unless the walk needs it first: an integrity stop open is resolved (or stands)
  // by the whole check, before anything; a render job in flight is polled (a request sent) as
  // the walk starts. Otherwise writes wait for it: one that finds it made findings fails, writing
  // nothing, and the walk ends on that error; the run then raises the integrity stop (below).
  const bool beside_walk = impl.record.open_stops.count("integrity") == 0 && impl.record.tickets.empty();
  if (beside_walk) {
    impl.held_progress.emplace();
    impl.integrity_known_clean = integrity_known_clean;
    m_project.ledger().hold_writes([&, engine_thread = std::this_thread::get_id()]() -> Result<void> {
      const Result<Impl::IntegrityFindings>& found = take_integrity();
      if (!found) {
        return found.error();
      }
      if (!found->found.empty()) {
        const core::Violation& first = found->found.front();
        return make_error(ErrorCode::corruption, "nothing is written: the project's files no longer match the ledger (" +
                                                     first.subject + ": " + first.message + ")");
      }
      // What the walk said before its first write is shown now, before that write's call goes
      // out (a status line drawn while it waits), not at the next report; the held progress is
      // the engine thread's, so only when the write is.
      if (std::this_thread::get_id() == engine_thread) {
        impl.release_progress(true);
      }
      return ok();
    });
  } else if (Result<Impl::IntegrityFindings>& found = take_integrity(); !found) {
    return found.error();
  }
  // A file edited, swapped or removed by hand is an integrity stop (the findings of `avps gate`),
  // never input to a step. What a crash leaves in passing (transient) the run recovers itself.
  auto integrity_stops = [&]() -> Result<bool> {
    AVPS_TRY_ASSIGN(Flow checked, settle_integrity());
    if (checked != Flow::go_on) {
      impl.outcome.exit = ExitCode::hard_stop;
      return true;
    }
    return false;
  };
  // Reservations an interrupted run left open: a call whose intent is recorded may have reached
  // its provider and counts as spent; one without was never sent and is released.
  const std::set<std::string>& maybe_sent = impl.record.intent_reservations;
  // A job whose ticket is recorded keeps its reservation open: it is polled and settled.
  std::set<std::string> jobs_in_flight;
  for (const auto& [key, ticket] : impl.record.tickets) {
    jobs_in_flight.insert(ticket.value("reservation_id", ""));
  }
  Result<governance::BudgetGovernor::Reconciled> reconciled = m_governor.reconcile_open_reservations(
      [&maybe_sent](const ledger::Reservation& r) {
        const std::string key = r.id.substr(0, r.id.find('#'));
        return maybe_sent.count(r.id) > 0 || maybe_sent.count(key + "#*") > 0;
      },
      [&jobs_in_flight](const ledger::Reservation& r) { return jobs_in_flight.count(r.id) > 0; });
  if (!reconciled) {
    // Its first write waited for the check beside it, and failed if the check found something:
    // the integrity stop comes first.
    AVPS_TRY_ASSIGN(bool stopped, integrity_stops());
    if (stopped) {
      return impl.outcome;
    }
    return std::move(reconciled).error();
  }
  if (reconciled->counted_as_spent + reconciled->released > 0) {
    AVPS_TRY(impl.report({.kind = Progress::Kind::note,
                          .text = "an interrupted run left " +
                                  std::to_string(reconciled->counted_as_spent + reconciled->released) +
                                  " reservation(s) open: " + std::to_string(reconciled->counted_as_spent) +
                                  " call(s) in flight counted as spent (" +
                                  governance::format_usd(reconciled->spent_micro_usd) + "), " +
                                  std::to_string(reconciled->released) + " never sent released"}));
  }
  impl.exchange.emplace(m_project, m_router, m_governor, m_backends, impl.record, impl.outcome);
  impl.exchange->log_routing_as(graph->role("router"));
  impl.exchange->on_interrupt([this] { return m_observer.interrupted(); },
                              [this] { return m_observer.cancel_jobs_on_interrupt() ? InterruptPolicy::cancel
                                                                                    : InterruptPolicy::keep; });
  impl.index_graph(*graph);
  if (!beside_walk) {
    AVPS_TRY_ASSIGN(bool stopped, integrity_stops());
    if (stopped) {
      return impl.outcome;
    }
  }
  // An open stop that holds the whole project refuses the run; one held to a scene or an entity
  // stands again when the walk reaches it, and the rest of the production goes on.
  for (const auto& [loop, stop] : impl.record.open_stops) {
    if (held_scene(stop).empty() && held_entity(stop).empty()) {
      AVPS_TRY_ASSIGN(bool stopped, integrity_stops());  // the integrity stop comes first
      if (stopped) {
        return impl.outcome;
      }
      impl.outcome.exit = ExitCode::hard_stop;
      impl.outcome.message = "STOP-" + std::to_string(stop.value("seq", int64_t{0})) + " is open: " +
                             stop.value("reason", "") + " — `avps override` records a decision, then run again";
      return impl.outcome;
    }
  }
  // A revision that changed upstream content restarts the walk; every pass is bounded by the
  // loops' own limits, so this ends.
  Impl::PassEnd end = Impl::PassEnd::restart;
  for (int pass = 0; end == Impl::PassEnd::restart; ++pass) {
    if (pass > 0) {
      AVPS_TRY(impl.report({.kind = Progress::Kind::note,
                            .text = "an upstream artifact was revised: walking the graph again (pass " +
                                    std::to_string(pass + 1) + ")"}));
    }
    Result<Impl::PassEnd> walked = impl.walk(*graph);
    // The check beside the walk is acted on as the walk ends, however it ended (a write its
    // findings refused ends it with an error), and comes before anything the walk says.
    AVPS_TRY_ASSIGN(bool stopped, integrity_stops());
    if (stopped) {
      return impl.outcome;
    }
    if (!walked && walked.error().code == ErrorCode::corruption) {
      // Tampering met during the run (a lock's face edited by hand while a GenPack's gate reads
      // it, a stored object damaged): the same check as at the start, so it is the integrity stop
      // naming the file, as `avps gate` reports it, not an error. A corruption the check cannot
      // find in the project's files is reported as it came.
      // Whole: what was met may be an object recorded before the mark, which a check from it leaves
      // to its readers.
      AVPS_TRY_ASSIGN(Flow met, impl.check_integrity(Impl::IntegrityScope::whole));
      if (met != Flow::go_on) {
        impl.outcome.exit = ExitCode::hard_stop;
        return impl.outcome;
      }
    }
    AVPS_TRY_ASSIGN(end, std::move(walked));
  }
  if (end == Impl::PassEnd::interrupted) {
    impl.outcome.exit = ExitCode::interrupted;
    impl.outcome.message = "interrupted; `avps run` resumes where this stopped";
    return impl.outcome;
  }
  if (end == Impl::PassEnd::whole_stop) {
    impl.outcome.exit = ExitCode::hard_stop;  // the message is the stop's (Impl::hard_stop)
    return impl.outcome;
  }
  // Every open stop ends the run with exit 3 once the work they do not hold is done: those held
  // this run, and those recorded before that the walk did not reach again.
  if (!impl.record.open_stops.empty()) {
    std::map<int64_t, std::string> open;  // by seq
    for (const auto& [loop, stop] : impl.record.open_stops) {
      const int64_t seq = stop.value("seq", int64_t{0});
      open.emplace(seq, "STOP-" + std::to_string(seq) + ": " + stop.value("reason", ""));
    }
    impl.outcome.exit = ExitCode::hard_stop;
    impl.outcome.message = std::to_string(open.size()) + " hard stop(s) hold part of the production; the rest is done";
    for (const auto& [seq, message] : open) {
      impl.outcome.message += "\n  " + message;
    }
    impl.outcome.message += "\n`avps status` says what each one holds; `avps override` records a decision";
  }
  return impl.outcome;
}

}  // namespace avps::engine
