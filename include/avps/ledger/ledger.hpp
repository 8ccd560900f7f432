#pragma once
// The ledger: the project's append-only, hash-chained record of everything avps did.
// Format: docs/formats/ledger.md. Authoritative state (STYLE §10): a newer schema is refused,
// an older one migrated inside a transaction.
//
// Ledger is an interface (below); its one implementation today stores everything in one SQLite
// file, .avps/ledger.db (WAL, synchronous=NORMAL with the ledger syncing the log itself once per
// group of commits, application_id 'AVPS', user_version = schema version). Every table is
// append-only: triggers RAISE(ABORT) on UPDATE and DELETE. Each event carries
// hash = sha256(prev_hash ‖ canonical JSON of the event), so an edited row breaks the chain. The
// head (seq, hash) is mirrored outside the database in .avps/HEAD, so a truncated tail is caught;
// events that carry a RUN_LOG row are also appended to logs/RUN_LOG_v001.csv with their hash as
// entry_hash. Both mirrors are brought up to date in groups (see sync()), never ahead of what is
// durable.
//
// Guarantees:
// - commit() is one SQLite transaction: every event and artifact index row of a Batch lands, or
//   none does.
// - Durability: a Sync::now commit is durable when commit() returns (one fdatasync of the
//   write-ahead log, which makes every commit before it durable too: group commit); a
//   Sync::deferred one is durable with the next sync. A power cut loses only commits made since
//   the last sync, newest first — the state a kill just before the first of them leaves. Every
//   commit, synced or not, survives a kill of the process (it is in the kernel's page cache).
// - HEAD and the CSV face lag the durable head by at most k_mirror_lag_events events or
//   k_mirror_lag_ms of a run (docs/formats/ledger.md), are exact once a command has ended
//   (end_run, or the ledger closed), and are never ahead of it: a mirror is written only after a
//   sync.
// - After a crash the next read-write open syncs the log, then completes the mirrors (HEAD
//   forward to the ledger's head, missing or torn CSV rows from the ledger) — but only when what
//   is on disk is a true prefix of what the ledger says; anything else is corruption and is
//   refused, never "repaired".
// - One writer at a time: a read-write open takes an exclusive lock on .avps/lock and fails with
//   the holder's pid if another avps holds it.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/clock.hpp"
#include "avps/core/result.hpp"
#include "avps/core/violation.hpp"

namespace avps::ledger {

inline constexpr int k_schema_version = 4;
inline constexpr const char* k_genesis_hash =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Paths inside a project folder that the ledger owns.
std::filesystem::path ledger_path(const std::filesystem::path& project_dir);    ///< .avps/ledger.db
/// .avps/ledger.db.new: where Ledger::create builds a ledger before publishing it by rename.
std::filesystem::path building_ledger_path(const std::filesystem::path& project_dir);
std::filesystem::path head_path(const std::filesystem::path& project_dir);      ///< .avps/HEAD
std::filesystem::path run_log_path(const std::filesystem::path& project_dir);   ///< logs/RUN_LOG_v001.csv
inline constexpr const char* k_run_log_relative = "logs/RUN_LOG_v001.csv";

/// One RUN_LOG row (DESIGN §3): the run-logger's 15 columns and budget_pct, as the text that goes
/// into the CSV. entry_hash is not part of it: it is the hash of the event that carries the row.
struct LogRow {
  std::string run_id;
  std::string parent_run_id;
  std::string timestamp;
  std::string skill_name;
  std::string scene_id;
  std::string shot_id;
  std::string model_used;
  std::string tier;
  std::string estimated_cost;
  std::string actual_cost;
  std::string duration_s;
  std::string outcome;  ///< PASS FIX FAIL WARN STOP DONE ERROR
  std::string regen_count;
  std::string artifact_output;
  std::string notes;
  std::string budget_pct;

  /// The CSV header: the 16 fields above, then entry_hash.
  static const std::vector<std::string>& columns();
  nlohmann::json to_json() const;
  static Result<LogRow> from_json(const nlohmann::json& j);
};

/// An artifact in the index: a file in the project whose bytes the ledger vouches for.
struct ArtifactRecord {
  std::string name;         ///< file name, e.g. CHAR_ALEX_LOCK_v002.txt
  std::string kind;         ///< artifacts::KindInfo::kind
  std::string target;       ///< scene / shot / target / entity id, or ""
  int version = 0;
  std::string path;         ///< project-relative path of the face
  std::string face_sha256;  ///< sha256 of the face file's bytes
  std::string json_sha256;  ///< sha256 of the canonical JSON (the object's name in .avps/objects)
  std::string author;       ///< "avps" or "human"
  std::string producer;     ///< skill or command that made it
  int64_t event_seq = 0;    ///< the artifact.recorded event that vouches for it

  nlohmann::json to_json() const;
  static Result<ArtifactRecord> from_json(const nlohmann::json& j);
};

/// A budget reservation: the worst case of one paid call, held against the caps until it ends.
struct Reservation {
  std::string id;         ///< unique, e.g. the call's idempotency key
  std::string scene_id;   ///< "" when the call is for no single scene
  std::string shot_id;    ///< "" when the call is for no single shot
  int64_t amount_micro_usd = 0;
  std::string purpose;    ///< what it pays for ("plausibility-auditor S03", "generate S03_SH02 proxy")

  nlohmann::json to_json() const;
  static Result<Reservation> from_json(const nlohmann::json& j);
};

/// How a reservation ended. Each reservation ends exactly once (the ledger refuses a second end).
/// settled + released == amount, except an overrun (the provider charged more than the worst
/// case), recorded as settled = the actual cost and released = 0.
struct ReservationEnd {
  std::string id;
  int64_t settled_micro_usd = 0;
  int64_t released_micro_usd = 0;
  std::optional<int64_t> provider_cost_micro_usd;
  std::string how;  ///< "settled", "released" or "reconciled" (an orphan found on resume)

  nlohmann::json to_json() const;
  static Result<ReservationEnd> from_json(const nlohmann::json& j);
};

/// Spend against one cap: settled, and reserved but not yet ended.
struct Spend {
  int64_t committed_micro_usd = 0;
  int64_t outstanding_micro_usd = 0;
  int64_t total() const { return committed_micro_usd + outstanding_micro_usd; }
};

/// The caps a reservation must fit under; scene and shot caps apply when set and the
/// reservation names a scene or shot.
struct Caps {
  int64_t project_micro_usd = 0;
  std::optional<int64_t> scene_micro_usd;
  std::optional<int64_t> shot_micro_usd;
};

/// An event before it is committed.
struct EventDraft {
  std::string kind;                         ///< frozen kind name (docs/formats/ledger.md)
  nlohmann::json body = nlohmann::json::object();
  std::optional<LogRow> row = std::nullopt;               ///< set for events that are RUN_LOG rows
  std::optional<ArtifactRecord> artifact = std::nullopt;  ///< set for artifact.recorded: indexed on commit
  std::optional<ReservationEnd> reservation_end = std::nullopt;  ///< ends a reservation, in the same transaction
};

struct Event {
  int64_t seq = 0;
  std::string run_id;
  std::string timestamp;
  std::string kind;
  nlohmann::json body;  ///< includes "row" and "artifact" when the draft had them
  std::string prev_hash;
  std::string hash;

  std::optional<LogRow> row() const;
  std::optional<ArtifactRecord> artifact() const;
};

struct Head {
  int64_t seq = 0;
  std::string hash = k_genesis_hash;
};

/// When a commit becomes durable (see the guarantees above).
enum class Sync {
  now,       ///< before commit() returns: for a record something outside the ledger is about to rely on
  deferred,  ///< with the next Sync::now commit or sync(): a power cut before then loses it, as a kill
             ///< just before it would; only for records nothing durable outside the ledger depends on
};

/// How far the mirrors may lag the durable head during a command (docs/formats/ledger.md).
inline constexpr int64_t k_mirror_lag_events = 256;
inline constexpr int64_t k_mirror_lag_ms = 1000;

enum class OpenMode { read_only, read_write };

/// The ledger, as every part of avps outside src/ledger sees it: an interface, so that a second
/// implementation (a shared PostgreSQL ledger for several machines, docs/architecture.md "A shared
/// ledger") can be added without touching the engine. The SQLite one (.avps/ledger.db) is the only
/// implementation today; create() and open() return it. Nothing outside src/ledger writes SQL.
///
/// What every implementation guarantees (the file's comment above gives the SQLite specifics):
/// - Append-only and hash-chained: events are only ever appended, each carrying
///   hash = sha256(prev_hash ‖ canonical JSON of {seq, run_id, ts, kind, body}); no event, index
///   row or budget row is ever changed or removed, and verify() reports any that was.
/// - commit() is atomic: every event, artifact index row and reservation end of one call lands, or
///   none does; events get consecutive seqs in the order given.
/// - Durability as Sync says: a Sync::now commit is durable when it returns, with every commit
///   before it; a power cut loses only a suffix of the deferred commits (what it keeps is the
///   ledger as of one commit).
/// - reserve() checks the caps and records the reservation atomically against every other
///   writer: committed + outstanding + amount never passes a cap.
/// - One writer at a time per project (a read-write open fails at once, naming the holder); a
///   read-only open changes nothing and reads one consistent snapshot for its whole life.
/// - HEAD and the CSV face are never ahead of what is durable, lag it by at most the documented
///   bound while a command runs, and are exact once it has ended.
///
/// Threading: every method may be called from any thread (the engine's workers commit while the
/// recording thread reads); each call is serialised against the others, so a commit sees no
/// other half-done. Except: begin_run(), end_run() and run_id() are called by the thread that
/// drives the command, while no other thread commits (a run's id is fixed while it runs).
/// A ledger open read-only does not serialise events() (and so each_event()) and object(): they
/// run at once with one another and with verify(), over the same snapshot (SQLite serialises
/// their steps on the one connection), so `avps gate` reads objects on one thread while it
/// checks the chain on another. A thread that reads much beside another takes a connection of
/// its own that reads the same snapshot (another_reader()), so the two do not take turns.
class Ledger {
 public:
  /// Creates the ledger of a new project (the .avps folder must exist, the database must not). It
  /// is built as .avps/ledger.db.new, HEAD and the CSV face written, then published by rename: a
  /// kill leaves no ledger.db (the next create replaces what it left) or the whole one. The SQLite
  /// implementation.
  static Result<std::unique_ptr<Ledger>> create(const std::filesystem::path& project_dir,
                                                const core::Clock& clock);
  /// Opens an existing ledger (the SQLite implementation). read_write takes the writer lock and
  /// completes the mirrors after a crash (see the guarantees above). read_only changes nothing on
  /// disk and reads one consistent snapshot for the ledger object's whole life: HEAD and the CSV
  /// face are read first, then one SQLite read transaction begins, so every query sees the same
  /// committed state while a writer goes on, and the mirrors verify() compares can lag that state,
  /// never lead it.
  static Result<std::unique_ptr<Ledger>> open(const std::filesystem::path& project_dir, OpenMode mode,
                                              const core::Clock& clock);
  /// A second read-only connection to the ledger this reader reads, for a thread of its own: the
  /// calls that several threads make on one reader take turns at its connection (SQLite's lock),
  /// which cost `avps gate` at 500 scenes a fifth of its wall time. It is given only when it reads
  /// what this reader reads: the same head, and so the same events, artifact index and budget rows
  /// (each is appended only with its event); objects that no event of this snapshot names may be
  /// more. nullptr when the ledger has moved on since this reader's snapshot (a writer committed
  /// since) or when this is a writer: the caller then shares this one, as before.
  [[nodiscard]] virtual Result<std::unique_ptr<Ledger>> another_reader() const = 0;
  /// A writer's destructor flushes (sync, then the mirrors exact); it cannot report a failure:
  /// what it leaves is what a kill leaves, completed by the next writing open.
  virtual ~Ledger() = default;
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  /// The project cap (micro-USD) that run-log rows' `budget_pct` is a percent of: from now on,
  /// a row that moves money (a non-zero estimated or actual cost) and has no budget_pct gets the
  /// project's spend (committed + reserved) once its event is in, against this cap, to two
  /// decimals. Without it budget_pct stays as the row has it.
  virtual void set_budget_basis(int64_t project_cap_micro_usd) = 0;

  /// Starts a run (event run.started); later appends carry its id. Returns the run id (RUN_0001 ...).
  [[nodiscard]] virtual Result<std::string> begin_run(const std::string& command, const nlohmann::json& details) = 0;
  /// Ends the current run (event run.finished) with an outcome such as "DONE", "ERROR", "STOP",
  /// then flush().
  [[nodiscard]] virtual Result<void> end_run(const std::string& outcome, const nlohmann::json& details) = 0;
  virtual const std::string& run_id() const = 0;

  /// Appends the drafts in one transaction and returns them as committed. Row timestamps and
  /// run ids left empty are filled in. `sync`: when it is durable (Sync::now by default).
  [[nodiscard]] virtual Result<std::vector<Event>> commit(std::vector<EventDraft> drafts, Sync sync = Sync::now) = 0;
  /// commit() of one draft.
  [[nodiscard]] Result<Event> append(EventDraft draft, Sync sync = Sync::now);
  /// Makes every commit so far durable: one sync for all of them (none when nothing is pending),
  /// then brings HEAD and the CSV face up to date when they lag by k_mirror_lag_events or
  /// k_mirror_lag_ms. A writer that makes several deferred commits (the intents of the calls
  /// leaving together, the answers of a wave of renders before their files) calls it once for
  /// the group.
  [[nodiscard]] virtual Result<void> sync() = 0;
  /// sync(), then HEAD and the CSV face brought up to date whatever their lag.
  [[nodiscard]] virtual Result<void> flush() = 0;

  /// Budget reservation, atomic with the cap check: if every applicable cap still holds
  /// committed + outstanding + amount, records the reservation with `event` (its body gains
  /// "reservation"); otherwise writes nothing and fails with budget_exceeded, naming the cap and
  /// the numbers. Deferred (Sync::deferred): nothing leaves under a reservation before its call's
  /// exchange.intent is durable, which makes the reservation durable too, so a power cut that
  /// loses it finds no call sent under it.
  [[nodiscard]] virtual Result<Event> reserve(const Reservation& reservation, const Caps& caps, EventDraft event) = 0;
  /// Spend against the project (scene_id and shot_id empty), a scene, or a shot.
  [[nodiscard]] virtual Result<Spend> spend(const std::string& scene_id, const std::string& shot_id) const = 0;
  /// What spend_per() groups by.
  enum class SpendScope { scene, shot };
  /// The spend of every scene (or every shot) any reservation names, in one pass: its id -> spend,
  /// each equal to spend(scene, "") (or spend("", shot)). A scope no reservation names spent nothing.
  [[nodiscard]] virtual Result<std::map<std::string, Spend>> spend_per(SpendScope scope) const = 0;
  /// Reservations not yet ended (oldest first).
  [[nodiscard]] virtual Result<std::vector<Reservation>> open_reservations() const = 0;
  /// Sum of all reservations, and of settled and released amounts (for audits and tests).
  struct BudgetTotals {
    int64_t reserved = 0, settled = 0, released = 0, overrun = 0;
  };
  [[nodiscard]] virtual Result<BudgetTotals> budget_totals() const = 0;

  /// Events as a reader needs them: a page at a time (a reader that folds them as they come
  /// instead of holding them all), only some kinds, some kinds without their bodies.
  struct EventQuery {
    int64_t after_seq = 0;
    size_t limit = 0;                 ///< at most this many (0: all)
    std::set<std::string> bodiless;  ///< events of these kinds come with an empty body (not parsed)
    bool bodies = true;              ///< false: every event comes with an empty body (none parsed)
    std::set<std::string> kinds;     ///< only events of these kinds (empty: every kind)
    /// When not empty: each body holds only these top-level members (those it has, not null), and
    /// the rest of it is never parsed (most of a pass's cost when it reads a few fields of every
    /// event). A body that is not valid JSON is parsed whole, and so fails as it would without.
    std::vector<std::string> members;
  };
  /// Events in order, as `query` says. Pages read one after another see one state of the ledger
  /// when it is open read-only (one snapshot) or this process is its only writer.
  [[nodiscard]] virtual Result<std::vector<Event>> events(const EventQuery& query) const = 0;
  /// Events in order; only those after `after_seq` when given.
  [[nodiscard]] Result<std::vector<Event>> events(int64_t after_seq = 0) const;
  /// Every event `query` selects (its `limit` aside), in order, handed to `each` a page of
  /// `page_size` at a time: a reader of the whole record holds one page, never the record. Ends
  /// at the first error, the ledger's or `each`'s, and returns it.
  [[nodiscard]] Result<void> each_event(EventQuery query, const std::function<Result<void>(Event&&)>& each,
                                        size_t page_size = 2048) const;
  /// The artifact index in recording order; only the artifacts recorded after event
  /// `after_event_seq` when given (a reader that keeps its own copy reads only what is new).
  [[nodiscard]] virtual Result<std::vector<ArtifactRecord>> artifacts(int64_t after_event_seq = 0) const = 0;
  /// Every `artifact.intent` left without an outcome (its artifact not in the index, and no
  /// `artifact.abandoned` of its name after it), whole, in order: what a writer's open recovers
  /// (ArtifactStore::recover). Found through the index, not by reading every write of the record.
  [[nodiscard]] virtual Result<std::vector<Event>> unfinished_intents() const = 0;
  [[nodiscard]] virtual Result<std::optional<ArtifactRecord>> find_artifact(const std::string& name) const = 0;
  /// The highest version of `kind` for `target` ("" for singletons), or nullopt; an index lookup.
  [[nodiscard]] virtual Result<std::optional<ArtifactRecord>> latest_artifact(const std::string& kind,
                                                                              const std::string& target) const = 0;
  virtual Head head() const = 0;

  /// Every integrity problem of the ledger itself and its mirrors: append-only protection in
  /// place, each stored hash recomputed, the chain linked, HEAD equal to the last event, the
  /// artifact index and the budget tables equal to the events that vouch for them, and the CSV
  /// face equal to the rows the events carry. A HEAD behind the last event and a CSV face that is
  /// a prefix of its rows are `transient`. On the writer it first does flush(), so the mirrors it
  /// compares hold everything it committed (a failed flush shows as their lag).
  std::vector<core::Violation> verify() const { return verify(nullptr); }
  /// What verify()'s one pass over the events hands on, for a caller that reads every event too
  /// (`avps gate`'s integrity check): `each` gets every event in order, its body holding only
  /// `members` as EventQuery::members gives them. The first failure (a body that is not JSON, as
  /// events() fails on it, an unreadable ledger, or `each`'s own error) is kept in `failed`, and no
  /// event after it is given; verify()'s own checks go on as without a visitor.
  struct EventVisitor {
    std::vector<std::string> members;
    /// Members wanted of some kinds only: each event whose kind is in `member_kinds` comes with
    /// these as well, every other event without them, and their text is neither taken out of the
    /// body nor parsed (the record check reads an artifact's "details" of artifact.recorded alone;
    /// artifact.intent carries as much of them, a fifth of a pass's parsing). A member in both
    /// lists comes with every event.
    std::vector<std::string> kind_members;
    std::set<std::string> member_kinds;
    std::function<Result<void>(Event&&)> each;
    std::optional<Error> failed;
    /// Set by verify(): the events given are those after this one (0: every event; see `since`).
    int64_t after_seq = 0;
  };
  /// verify(), handing each event to `also` as well when it is given.
  std::vector<core::Violation> verify(EventVisitor* also) const { return verify(also, nullptr, nullptr); }

  /// A point of the record that a verify() which found nothing vouched for, kept by its caller
  /// (the run's mark, docs/formats/verified.md) so that a later verify() checks what lies up to it
  /// by hashes and digests alone: the event `seq` still has `hash` (every event's hash being
  /// recomputed, every event up to it is then byte for byte what was verified), the artifact index
  /// and budget rows of the events up to it still hash to `tables_sha256`, and the CSV face's first
  /// `run_log_bytes` bytes to `run_log_sha256`.
  struct VerifiedPoint {
    int64_t seq = 0;
    std::string hash;
    uint64_t run_log_bytes = 0;
    std::string run_log_sha256;
    std::string tables_sha256;
  };
  /// verify(also) from a point: when `since` still holds (VerifiedPoint), every event's hash and
  /// the chain are checked as always, but only what comes after the point is read for the other
  /// checks, and `also` is given only those events (`also->after_seq` says from where). A point
  /// that no longer holds is not a finding: the whole record is then verified, as without one.
  /// `reached`, when given, is set to the point the ledger stands at as the pass ends (seq 0 when
  /// the ledger is empty or its face unreadable): the caller keeps it only when this verify(), and
  /// whatever else it checks, found nothing. Taken in the same reading of the face and the tables,
  /// and from the writer itself, which holds the project's lock (no writer in between).
  virtual std::vector<core::Violation> verify(EventVisitor* also, const VerifiedPoint* since,
                                              VerifiedPoint* reached) const = 0;

  /// Writes into `dst_project_dir` (its .avps folder exists and holds no ledger) a ledger of this
  /// implementation as it stood right after event `through_seq`: the same events, hashes,
  /// artifact index, budget tables and objects up to there, with its HEAD and CSV face. `avps
  /// replay` builds its scratch project on it. The source is only read, in one consistent snapshot.
  [[nodiscard]] virtual Result<void> copy_prefix(const std::filesystem::path& dst_project_dir,
                                                 int64_t through_seq) const = 0;

  virtual const std::filesystem::path& project_dir() const = 0;

  // --- Objects (schema 3) -------------------------------------------------------------------
  // Content-addressed bytes (an artifact's canonical JSON, a canonical request, an answer, a
  // render) kept in the ledger, so that the sync that makes the events naming them durable makes
  // them durable too: no file, no fsync of their own (docs/formats/ledger.md "Objects").

  /// Stores `bytes` and returns their sha256 (hex). Its own transaction, deferred: durable with the
  /// next sync, and never after a commit made after it (a power cut keeps the ledger as of one
  /// commit), so an event that names the object is never durable without it. Bytes the ledger
  /// holds already are stored once. Writer only.
  [[nodiscard]] virtual Result<std::string> put_object(std::string_view bytes) = 0;
  /// The bytes stored under `sha256` exactly as the ledger holds them (not re-hashed here: readers
  /// use artifacts::read_object, which does), or nullopt when the ledger holds no such object (an
  /// object of schema 2 or a large one is a file under .avps/objects).
  [[nodiscard]] virtual Result<std::optional<std::string>> object(const std::string& sha256) const = 0;

  // --- Holding writes ------------------------------------------------------------------------

  /// Holds this process's writes on this ledger until `gate` is passed: the first write (commit,
  /// append, begin_run, end_run, reserve, put_object; from any thread) calls it, once, and the
  /// writes that come meanwhile wait for it; an error it returns is that write's and every later
  /// write's, until open_writes(). For a check that must be taken before anything is written but
  /// may run beside the reads that come first (the run's integrity check beside its walk,
  /// Engine::run). sync() and flush() are not held: they only make durable, and mirror, what was
  /// committed. Thread-safe; the gate must not write to this ledger.
  void hold_writes(std::function<Result<void>()> gate);
  /// Ends a hold, whatever its gate said (the caller has acted on it): writes go on.
  void open_writes();

 protected:
  Ledger() = default;
  /// What each write of an implementation calls first (hold_writes).
  [[nodiscard]] Result<void> pass_write_hold();

 private:
  struct WriteHold {
    std::mutex mutex;
    std::atomic<bool> held{false};  // read without the mutex by writes when nothing is held
    std::function<Result<void>()> gate;
    std::optional<Error> failed;
  };
  WriteHold m_write_hold;
};

/// Whether an avps process holds the project's writer lock now (from /proc/locks: probing with
/// flock could make a starting writer fail). False where that cannot be known.
bool writer_active(const std::filesystem::path& project_dir);

/// The CSV face's exact text for these events (header + one line per event with a row).
std::string render_run_log(const std::vector<Event>& events);

}  // namespace avps::ledger
