// The only file that includes <sqlite3.h>.
#include "avps/ledger/ledger.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <tuple>
#include <mutex>
#include <set>

#include "avps/core/canonical_json.hpp"
#include "avps/core/csv.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/opened_file.hpp"

namespace avps::ledger {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int k_application_id = 0x41565053;  // "AVPS"
constexpr const char* k_head_magic = "avps-head 1";

// Schema migrations, by the user_version they produce. Frozen: never edit a shipped entry, add
// a new one. Tables are append-only; the triggers are part of the schema.
struct Migration {
  int version;
  const char* sql;
};

const Migration k_migrations[] = {
    {1, R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
  seq INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
  ts TEXT NOT NULL,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE
);
CREATE TABLE artifacts (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  version INTEGER NOT NULL,
  path TEXT NOT NULL,
  face_sha256 TEXT NOT NULL,
  json_sha256 TEXT NOT NULL,
  author TEXT NOT NULL,
  producer TEXT NOT NULL,
  event_seq INTEGER NOT NULL REFERENCES events(seq)
);
CREATE INDEX artifacts_by_stem ON artifacts(kind, target, version);
CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
CREATE TRIGGER artifacts_no_update BEFORE UPDATE ON artifacts BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
CREATE TRIGGER artifacts_no_delete BEFORE DELETE ON artifacts BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
)sql"},
    // 2: budget reservations. An end is its own append-only row whose primary key is the
    // reservation's id, so no reservation can end twice.
    {2, R"sql(
CREATE TABLE reservations (
  id TEXT PRIMARY KEY,
  scene_id TEXT NOT NULL,
  shot_id TEXT NOT NULL,
  amount_micro_usd INTEGER NOT NULL CHECK (amount_micro_usd >= 0),
  purpose TEXT NOT NULL,
  event_seq INTEGER NOT NULL REFERENCES events(seq)
);
CREATE INDEX reservations_by_scene ON reservations(scene_id);
CREATE INDEX reservations_by_shot ON reservations(shot_id);
CREATE TABLE reservation_ends (
  id TEXT PRIMARY KEY REFERENCES reservations(id),
  settled_micro_usd INTEGER NOT NULL CHECK (settled_micro_usd >= 0),
  released_micro_usd INTEGER NOT NULL CHECK (released_micro_usd >= 0),
  provider_cost_micro_usd INTEGER,
  how TEXT NOT NULL,
  event_seq INTEGER NOT NULL REFERENCES events(seq)
);
CREATE TRIGGER reservations_no_update BEFORE UPDATE ON reservations BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
CREATE TRIGGER reservations_no_delete BEFORE DELETE ON reservations BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
CREATE TRIGGER reservation_ends_no_update BEFORE UPDATE ON reservation_ends BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
CREATE TRIGGER reservation_ends_no_delete BEFORE DELETE ON reservation_ends BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
)sql"},
    // 3: objects in the ledger, made durable by the log's own sync (no file, no fsync each).
    // after_seq: the last event when the object was first stored; every event that names it comes
    // after (copy_prefix keeps the objects of a prefix by it).
    {3, R"sql(
CREATE TABLE objects (
  sha256 TEXT PRIMARY KEY,
  bytes BLOB NOT NULL,
  after_seq INTEGER NOT NULL
);
CREATE TRIGGER objects_no_update BEFORE UPDATE ON objects BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
CREATE TRIGGER objects_no_delete BEFORE DELETE ON objects BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;
)sql"},
    // 4: events by kind. The writer's look-ups of a few kinds (the runs so far, the intents
    // recovery must finish, the overrides) read those rows, not every event of the record. Only
    // speed: a reader of schema 3 gives the same answers without it (k_oldest_readable_schema).
    {4, R"sql(
CREATE INDEX events_by_kind ON events(kind);
)sql"},
};

// The oldest schema a read-only command reads as it is: every schema since adds only indexes,
// which change how fast a query is answered, never its answer. An older one lacks tables, and a
// reader asks for a writing command to migrate it.
constexpr int k_oldest_readable_schema = 3;

const char* const k_required_triggers[] = {
    "meta_no_update",         "meta_no_delete",         "events_no_update",           "events_no_delete",
    "artifacts_no_update",    "artifacts_no_delete",    "reservations_no_update",     "reservations_no_delete",
    "reservation_ends_no_update", "reservation_ends_no_delete", "objects_no_update", "objects_no_delete",
};

// Whether a run-log cost cell says money moved ("0.020000"; not "", not "0.000000").
bool row_money(const std::string& usd) {
  return !usd.empty() && usd.find_first_of("123456789") != std::string::npos;
}

// `path` as the path part of an SQLite file: URI (RFC 3986 escapes for what would end it).
std::string uri_path(const fs::path& path) {
  std::string out;
  for (char c : fs::absolute(path).string()) {
    if (c == '%' || c == '?' || c == '#') {
      char escaped[4];
      std::snprintf(escaped, sizeof escaped, "%%%02X", static_cast<unsigned char>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out;
}

// --- Test hook: the fault plan (core::set_fault_point, AVPS_FAULT_AT) inside SQLite ---
// While a plan is set, read-write connections open through "avps-fault", a shim over the default
// VFS that counts each xWrite and xTruncate as a write and each xSync as an fsync, with the
// counters of core/fs.cpp, and fails the one the plan names with SQLITE_IOERR_*: what a full or
// failing disk gives SQLite, so the ledger's own error paths run. Without a plan the shim is not
// even registered; every other call passes straight through.
struct FaultFile {
  sqlite3_file base;   // base.pMethods = k_fault_io
  sqlite3_file* real;  // the default VFS's file, in the same allocation, right after this struct
};

sqlite3_file* real_file(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f)->real; }

int fault_close(sqlite3_file* f) { return real_file(f)->pMethods->xClose(real_file(f)); }
int fault_read(sqlite3_file* f, void* buffer, int amount, sqlite3_int64 offset) {
  return real_file(f)->pMethods->xRead(real_file(f), buffer, amount, offset);
}
int fault_write(sqlite3_file* f, const void* buffer, int amount, sqlite3_int64 offset) {
  if (core::inject_fault(core::FaultOp::write)) {
    return SQLITE_IOERR_WRITE;
  }
  return real_file(f)->pMethods->xWrite(real_file(f), buffer, amount, offset);
}
int fault_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (core::inject_fault(core::FaultOp::write)) {
    return SQLITE_IOERR_TRUNCATE;
  }
  return real_file(f)->pMethods->xTruncate(real_file(f), size);
}
int fault_sync(sqlite3_file* f, int flags) {
  if (core::inject_fault(core::FaultOp::fsync)) {
    return SQLITE_IOERR_FSYNC;
  }
  return real_file(f)->pMethods->xSync(real_file(f), flags);
}
int fault_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real_file(f)->pMethods->xFileSize(real_file(f), size);
}
int fault_lock(sqlite3_file* f, int level) { return real_file(f)->pMethods->xLock(real_file(f), level); }
int fault_unlock(sqlite3_file* f, int level) { return real_file(f)->pMethods->xUnlock(real_file(f), level); }
int fault_check_reserved(sqlite3_file* f, int* out) {
  return real_file(f)->pMethods->xCheckReservedLock(real_file(f), out);
}
int fault_file_control(sqlite3_file* f, int op, void* arg) {
  return real_file(f)->pMethods->xFileControl(real_file(f), op, arg);
}
int fault_sector_size(sqlite3_file* f) { return real_file(f)->pMethods->xSectorSize(real_file(f)); }
int fault_device(sqlite3_file* f) { return real_file(f)->pMethods->xDeviceCharacteristics(real_file(f)); }
int fault_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real_file(f)->pMethods->xShmMap(real_file(f), region, size, extend, out);
}
int fault_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real_file(f)->pMethods->xShmLock(real_file(f), offset, n, flags);
}
void fault_shm_barrier(sqlite3_file* f) { real_file(f)->pMethods->xShmBarrier(real_file(f)); }
int fault_shm_unmap(sqlite3_file* f, int delete_flag) {
  return real_file(f)->pMethods->xShmUnmap(real_file(f), delete_flag);
}
int fault_fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  return real_file(f)->pMethods->xFetch(real_file(f), offset, amount, out);
}
int fault_unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  return real_file(f)->pMethods->xUnfetch(real_file(f), offset, p);
}

// Version 3 methods: the unix VFS's own (WAL needs the shared-memory ones).
const sqlite3_io_methods k_fault_io = {
    3,          fault_close,          fault_read,       fault_write,        fault_truncate,
    fault_sync, fault_file_size,      fault_lock,       fault_unlock,       fault_check_reserved,
    fault_file_control, fault_sector_size, fault_device, fault_shm_map,     fault_shm_lock,
    fault_shm_barrier,  fault_shm_unmap,   fault_fetch,  fault_unfetch};

sqlite3_vfs* real_vfs(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }

int fault_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* f = reinterpret_cast<FaultFile*>(file);
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  int rc = real_vfs(vfs)->xOpen(real_vfs(vfs), name, f->real, flags, out_flags);
  // SQLite calls xClose whenever pMethods is set, even after a failed open: mirror the real file.
  f->base.pMethods = f->real->pMethods != nullptr ? &k_fault_io : nullptr;
  return rc;
}
int fault_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return real_vfs(vfs)->xDelete(real_vfs(vfs), name, sync_dir);
}
int fault_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return real_vfs(vfs)->xAccess(real_vfs(vfs), name, flags, out);
}
int fault_full_pathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return real_vfs(vfs)->xFullPathname(real_vfs(vfs), name, size, out);
}
void* fault_dl_open(sqlite3_vfs* vfs, const char* name) { return real_vfs(vfs)->xDlOpen(real_vfs(vfs), name); }
void fault_dl_error(sqlite3_vfs* vfs, int size, char* out) { real_vfs(vfs)->xDlError(real_vfs(vfs), size, out); }
void (*fault_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return real_vfs(vfs)->xDlSym(real_vfs(vfs), handle, symbol);
}
void fault_dl_close(sqlite3_vfs* vfs, void* handle) { real_vfs(vfs)->xDlClose(real_vfs(vfs), handle); }
int fault_randomness(sqlite3_vfs* vfs, int size, char* out) {
  return real_vfs(vfs)->xRandomness(real_vfs(vfs), size, out);
}
int fault_sleep(sqlite3_vfs* vfs, int microseconds) { return real_vfs(vfs)->xSleep(real_vfs(vfs), microseconds); }
int fault_current_time(sqlite3_vfs* vfs, double* out) { return real_vfs(vfs)->xCurrentTime(real_vfs(vfs), out); }
int fault_last_error(sqlite3_vfs* vfs, int size, char* out) {
  return real_vfs(vfs)->xGetLastError(real_vfs(vfs), size, out);
}
int fault_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return real_vfs(vfs)->xCurrentTimeInt64(real_vfs(vfs), out);
}

// The VFS name a read-write connection opens with: nullptr (SQLite's default) unless a fault
// plan is set, then the shim, registered on first use.
const char* fault_vfs_name() {
  if (!core::fault_plan_active()) {
    return nullptr;
  }
  static sqlite3_vfs shim;
  static std::once_flag registered;
  static bool usable = false;
  std::call_once(registered, [] {
    sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
    if (base == nullptr || base->iVersion < 2) {
      return;
    }
    shim.iVersion = 2;
    shim.szOsFile = static_cast<int>(sizeof(FaultFile)) + base->szOsFile;
    shim.mxPathname = base->mxPathname;
    shim.zName = "avps-fault";
    shim.pAppData = base;
    shim.xOpen = fault_open;
    shim.xDelete = fault_delete;
    shim.xAccess = fault_access;
    shim.xFullPathname = fault_full_pathname;
    shim.xDlOpen = fault_dl_open;
    shim.xDlError = fault_dl_error;
    shim.xDlSym = fault_dl_sym;
    shim.xDlClose = fault_dl_close;
    shim.xRandomness = fault_randomness;
    shim.xSleep = fault_sleep;
    shim.xCurrentTime = fault_current_time;
    shim.xGetLastError = fault_last_error;
    shim.xCurrentTimeInt64 = fault_current_time_int64;
    usable = sqlite3_vfs_register(&shim, /*makeDflt=*/0) == SQLITE_OK;
  });
  return usable ? shim.zName : nullptr;
}

// RAII over sqlite3 / sqlite3_stmt. Statements are prepared once per connection and kept: the
// engine asks the index for an artifact's latest version thousands of times a run, and parsing
// the SQL each time cost more than the lookup. A writer's connection is not thread-safe (SQLite's
// multi-thread mode): the ledger's mutex is held around every use. A reader's connection is in
// SQLite's serialized mode, and the kept statements are handed out under a lock of their own, so
// two threads may read through it at once, each with its own Stmt (`avps gate` checks the chain
// on one thread while its record check reads objects on another): SQLite serialises their steps,
// and a failed step's message is taken while the step still holds the connection.
class Db {
 public:
  Db() = default;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db() {
    finalize_statements();
    if (m_db) {
      sqlite3_close_v2(m_db);
    }
  }
  // A prepared statement of `sql`, reset, and whether it is the kept one (else the caller
  // finalizes it): the kept one while no other Stmt uses it, a fresh one otherwise.
  std::pair<sqlite3_stmt*, bool> statement(const char* sql) const {
    std::lock_guard<std::mutex> lock(m_statements_mutex);
    auto [kept, fresh] = m_statements.try_emplace(sql, nullptr);
    if (fresh && sqlite3_prepare_v3(m_db, sql, -1, SQLITE_PREPARE_PERSISTENT, &kept->second, nullptr) != SQLITE_OK) {
      m_statements.erase(kept);
      return {nullptr, false};
    }
    if (m_in_use.insert(kept->second).second) {
      return {kept->second, true};
    }
    sqlite3_stmt* own = nullptr;
    if (sqlite3_prepare_v2(m_db, sql, -1, &own, nullptr) != SQLITE_OK) {
      own = nullptr;
    }
    return {own, false};
  }
  // Gives a kept statement back, reset and unbound.
  void release(sqlite3_stmt* stmt) const {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    std::lock_guard<std::mutex> lock(m_statements_mutex);
    m_in_use.erase(stmt);
  }
  // Closes the connection (the last one: SQLite checkpoints the WAL into the file and removes it).
  Result<void> close() {
    finalize_statements();
    if (m_db && sqlite3_close(m_db) != SQLITE_OK) {
      return error("cannot close the ledger");
    }
    m_db = nullptr;
    return ok();
  }
  Result<void> open(const fs::path& path, bool create) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path.c_str(), &m_db, flags, fault_vfs_name()) != SQLITE_OK) {
      return error("cannot open ledger " + path.string());
    }
    sqlite3_busy_timeout(m_db, 10000);
    sqlite3_extended_result_codes(m_db, 1);
    return ok();
  }
  // A reader's connection: SQLite's read-only mode, so a reader can never change the ledger. On a
  // folder this process may not write (an auditor's read-only mount), WAL readers cannot create
  // the shared-memory file; the ledger is then opened as immutable: no writer can be changing a
  // folder nobody may write, so there is nothing to lock against.
  Result<void> open_read_only(const fs::path& path) {
    const std::string uri = "file:" + uri_path(path);
    Result<void> probed = make_error(ErrorCode::io_error, "out of memory");
    if (sqlite3_open_v2((uri + "?mode=ro").c_str(), &m_db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_FULLMUTEX,
                        nullptr) == SQLITE_OK) {
      // The busy timeout before the first read: a writer holding the WAL index for a moment (a
      // checkpoint, or stopped in the middle of one) makes the probe wait, not fail.
      sqlite3_busy_timeout(m_db, 10000);
      sqlite3_extended_result_codes(m_db, 1);
      probed = exec("SELECT count(*) FROM sqlite_master");
      if (probed) {
        return ok();
      }
    } else if (m_db) {
      probed = make_error(ErrorCode::io_error, sqlite3_errmsg(m_db));
    }
    sqlite3_close_v2(m_db);
    m_db = nullptr;
    if (::access(path.parent_path().c_str(), W_OK) == 0) {
      return make_error(ErrorCode::io_error, "cannot open ledger " + path.string() + ": " + probed.error().message);
    }
    if (sqlite3_open_v2((uri + "?immutable=1").c_str(), &m_db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
      return error("cannot open ledger " + path.string() + " (read-only folder)");
    }
    sqlite3_extended_result_codes(m_db, 1);
    return ok();
  }
  Result<void> exec(const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message ? message : sqlite3_errmsg(m_db);
      sqlite3_free(message);
      return make_error(ErrorCode::io_error, "ledger: " + text + where());
    }
    return ok();
  }
  Error error(const std::string& what) const {
    return make_error(ErrorCode::io_error, what + ": " + (m_db ? sqlite3_errmsg(m_db) + where() : "out of memory"));
  }
  sqlite3* get() const { return m_db; }

 private:
  // An error of the disk (not of the SQL) names the file, so the person knows where to look.
  std::string where() const {
    const int code = m_db ? (sqlite3_extended_errcode(m_db) & 0xff) : SQLITE_OK;
    if (code != SQLITE_IOERR && code != SQLITE_FULL && code != SQLITE_CANTOPEN) {
      return "";
    }
    const char* file = sqlite3_db_filename(m_db, "main");
    return file && *file ? std::string(" (") + file + ")" : std::string();
  }
  void finalize_statements() {
    for (auto& [sql, stmt] : m_statements) {
      sqlite3_finalize(stmt);
    }
    m_statements.clear();
    m_in_use.clear();
  }

  sqlite3* m_db = nullptr;
  mutable std::mutex m_statements_mutex;  // over the two below: a reader's threads share them
  mutable std::map<std::string, sqlite3_stmt*> m_statements;  // SQL text -> its kept statement
  mutable std::set<sqlite3_stmt*> m_in_use;
};

class Stmt {
 public:
  Stmt(const Db& db, const char* sql) : m_db(db) { std::tie(m_stmt, m_kept) = db.statement(sql); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() {
    if (m_kept) {
      m_db.release(m_stmt);
    } else {
      sqlite3_finalize(m_stmt);
    }
  }
  bool valid() const { return m_stmt != nullptr; }
  void bind(int i, const std::string& s) { sqlite3_bind_text(m_stmt, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT); }
  void bind(int i, int64_t v) { sqlite3_bind_int64(m_stmt, i, v); }
  void bind_blob(int i, std::string_view bytes) {
    sqlite3_bind_blob64(m_stmt, i, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  }
  /// true: a row is ready; false: done. Errors come back through `error`.
  Result<bool> step() {
    // The connection's own mutex (recursive; null, and these no-ops, for a writer's connection)
    // held over the step and its error message: another thread's call in between would replace
    // the message.
    sqlite3_mutex* connection = sqlite3_db_mutex(m_db.get());
    sqlite3_mutex_enter(connection);
    const int rc = sqlite3_step(m_stmt);
    Result<bool> out = rc == SQLITE_ROW    ? Result<bool>(true)
                       : rc == SQLITE_DONE ? Result<bool>(false)
                                           : Result<bool>(m_db.error("ledger statement failed"));
    sqlite3_mutex_leave(connection);
    return out;
  }
  std::string text(int col) const {
    const unsigned char* p = sqlite3_column_text(m_stmt, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(m_stmt, col))) : "";
  }
  /// The column's text in SQLite's own buffer, valid until the statement steps or resets, or the
  /// column is read as another type: parsing a body from it spares a copy (a body is larger than
  /// malloc's small bins, and each such allocation had glibc consolidate its free lists).
  std::string_view text_view(int col) const {
    const unsigned char* p = sqlite3_column_text(m_stmt, col);
    return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(m_stmt, col)))
             : std::string_view();
  }
  int64_t integer(int col) const { return sqlite3_column_int64(m_stmt, col); }
  int columns() const { return sqlite3_column_count(m_stmt); }
  /// The index of the result column named `name`, -1 when there is none.
  int column_index(std::string_view name) const {
    for (int col = 0; col < columns(); ++col) {
      if (const char* named = sqlite3_column_name(m_stmt, col); named != nullptr && name == named) {
        return col;
      }
    }
    return -1;
  }
  std::string blob(int col) const {
    const void* p = sqlite3_column_blob(m_stmt, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(m_stmt, col))) : "";
  }
  bool is_null(int col) const { return sqlite3_column_type(m_stmt, col) == SQLITE_NULL; }
  void reset() {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
  }

 private:
  const Db& m_db;
  sqlite3_stmt* m_stmt = nullptr;
  bool m_kept = false;
};

Result<int64_t> query_int(const Db& db, const char* sql) {
  Stmt stmt(db, sql);
  if (!stmt.valid()) {
    return db.error("ledger query failed");
  }
  AVPS_TRY_ASSIGN(bool has_row, stmt.step());
  return has_row ? stmt.integer(0) : 0;
}

// An event's columns but its body, of a row selected as "seq, run_id, ts, kind, body, prev_hash,
// hash, ...".
Event event_without_body(const Stmt& stmt) {
  Event e;
  e.seq = stmt.integer(0);
  e.run_id = stmt.text(1);
  e.timestamp = stmt.text(2);
  e.kind = stmt.text(3);
  e.prev_hash = stmt.text(5);
  e.hash = stmt.text(6);
  return e;
}

// The bytes hashed for an event. Fields are named, so nothing can shift between them.
Result<std::string> event_hash(const std::string& prev_hash, int64_t seq, const std::string& run_id,
                               const std::string& ts, const std::string& kind, const json& body) {
  json canonical = {{"seq", seq}, {"run_id", run_id}, {"ts", ts}, {"kind", kind}, {"body", body}};
  AVPS_TRY_ASSIGN(std::string bytes, core::canonical_json(canonical));
  return core::sha256_hex(prev_hash + bytes);
}

std::string format_head(const Head& head) {
  return std::string(k_head_magic) + "\n" + std::to_string(head.seq) + " " + head.hash + "\n";
}

// HEAD as read: nullopt if the file is missing; an error if it is malformed or unreadable.
Result<std::optional<Head>> parse_head(const Result<std::string>& text) {
  if (!text) {
    if (text.error().code == ErrorCode::not_found) {
      return std::optional<Head>{};
    }
    return text.error();
  }
  auto bad = make_error(ErrorCode::corruption, ".avps/HEAD is malformed");
  std::string prefix = std::string(k_head_magic) + "\n";
  if (text->rfind(prefix, 0) != 0) {
    return bad;
  }
  std::string rest = text->substr(prefix.size());
  auto space = rest.find(' ');
  if (space == std::string::npos || rest.empty() || rest.back() != '\n') {
    return bad;
  }
  Head head;
  try {
    head.seq = std::stoll(rest.substr(0, space));
  } catch (const std::exception&) {
    return bad;
  }
  head.hash = rest.substr(space + 1, rest.size() - space - 2);
  if (!core::is_sha256_hex(head.hash) || head.seq < 0) {
    return bad;
  }
  return std::optional<Head>{head};
}

Result<std::optional<Head>> read_head(const fs::path& project_dir) {
  return parse_head(core::read_file(head_path(project_dir)));
}

// The pid of the process holding an exclusive flock on the file with inode `inode`, from
// /proc/locks ("1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF"); nullopt when none (or no
// /proc).
std::optional<std::string> flock_writer_pid(ino_t inode) {
  Result<std::string> locks = core::read_file("/proc/locks");
  if (!locks) {
    return std::nullopt;
  }
  const std::string device_and_inode = ":" + std::to_string(inode) + " ";
  size_t start = 0;
  while (start < locks->size()) {
    size_t end = locks->find('\n', start);
    std::string line = locks->substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? locks->size() : end + 1;
    if (line.find("FLOCK") == std::string::npos || line.find(device_and_inode) == std::string::npos ||
        line.find("->") != std::string::npos) {
      continue;  // ("->": a process waiting for the lock, not holding it)
    }
    std::vector<std::string> fields;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && line[i] == ' ') {
        ++i;
      }
      size_t j = line.find(' ', i);
      fields.push_back(line.substr(i, j == std::string::npos ? std::string::npos : j - i));
      i = j == std::string::npos ? line.size() : j;
    }
    if (fields.size() >= 5 && fields[3] == "WRITE") {
      return fields[4];
    }
  }
  return std::nullopt;
}

// The mirrors as a reader found them just before it took its snapshot of the database: the
// writer updates them after each commit, so read first they are never ahead of the snapshot.
struct Mirrors {
  Result<std::string> head = std::string();
  Result<std::string> run_log = std::string();
};

Mirrors read_mirrors(const fs::path& project_dir) {
  return Mirrors{core::read_file(head_path(project_dir)), core::read_file(run_log_path(project_dir))};
}

// The run log as a reader found it before its snapshot, read only if asked (verify): opened then,
// with its length then, and read later up to that length. The writer only appends to it or
// replaces it by a rename, so those bytes are what a read at opening would have returned, and a
// reader that never verifies (status, report) does not read a face that grows with the record.
class RunLogAsOpened {
 public:
  explicit RunLogAsOpened(const fs::path& project_dir) {
    const fs::path path = run_log_path(project_dir);
    if (Result<core::OpenedFile> opened = core::OpenedFile::open(path)) {
      m_file.emplace(std::move(*opened));
    } else {
      m_failed = core::read_file(path);  // the error a read now gives (or the file, if it just appeared)
    }
  }

  // What an edit in place cut short since is read as it is: what is there is what is compared.
  Result<std::string> read() const { return m_file ? m_file->read(0, m_file->size()) : *m_failed; }

 private:
  std::optional<core::OpenedFile> m_file;
  std::optional<Result<std::string>> m_failed;
};

Result<void> write_head(const fs::path& project_dir, const Head& head) {
  return core::write_file_atomic(head_path(project_dir), format_head(head), core::Overwrite::yes,
                                 core::Durability::durable);
}

std::string row_line(const LogRow& row, const std::string& entry_hash) {
  return core::csv_format_record({row.run_id, row.parent_run_id, row.timestamp, row.skill_name, row.scene_id,
                                  row.shot_id, row.model_used, row.tier, row.estimated_cost, row.actual_cost,
                                  row.duration_s, row.outcome, row.regen_count, row.artifact_output, row.notes,
                                  row.budget_pct, entry_hash});
}

std::string run_log_header() {
  return core::csv_format_record(LogRow::columns());
}

}  // namespace

// --- LogRow / ArtifactRecord / Event ---------------------------------------------------------

const std::vector<std::string>& LogRow::columns() {
  static const std::vector<std::string> k_columns = {
      "run_id",      "parent_run_id", "timestamp",  "skill_name",  "scene_id",        "shot_id",
      "model_used",  "tier",          "estimated_cost", "actual_cost", "duration_s",  "outcome",
      "regen_count", "artifact_output", "notes",   "budget_pct",  "entry_hash"};
  return k_columns;
}

json LogRow::to_json() const {
  return {{"run_id", run_id},         {"parent_run_id", parent_run_id}, {"timestamp", timestamp},
          {"skill_name", skill_name}, {"scene_id", scene_id},           {"shot_id", shot_id},
          {"model_used", model_used}, {"tier", tier},                   {"estimated_cost", estimated_cost},
          {"actual_cost", actual_cost}, {"duration_s", duration_s},     {"outcome", outcome},
          {"regen_count", regen_count}, {"artifact_output", artifact_output}, {"notes", notes},
          {"budget_pct", budget_pct}};
}

Result<LogRow> LogRow::from_json(const json& j) {
  try {
    LogRow r;
    r.run_id = j.at("run_id").get<std::string>();
    r.parent_run_id = j.at("parent_run_id").get<std::string>();
    r.timestamp = j.at("timestamp").get<std::string>();
    r.skill_name = j.at("skill_name").get<std::string>();
    r.scene_id = j.at("scene_id").get<std::string>();
    r.shot_id = j.at("shot_id").get<std::string>();
    r.model_used = j.at("model_used").get<std::string>();
    r.tier = j.at("tier").get<std::string>();
    r.estimated_cost = j.at("estimated_cost").get<std::string>();
    r.actual_cost = j.at("actual_cost").get<std::string>();
    r.duration_s = j.at("duration_s").get<std::string>();
    r.outcome = j.at("outcome").get<std::string>();
    r.regen_count = j.at("regen_count").get<std::string>();
    r.artifact_output = j.at("artifact_output").get<std::string>();
    r.notes = j.at("notes").get<std::string>();
    r.budget_pct = j.at("budget_pct").get<std::string>();
    return r;
  } catch (const json::exception& e) {
    return make_error(ErrorCode::corruption, std::string("malformed run-log row: ") + e.what());
  }
}

json ArtifactRecord::to_json() const {
  return {{"name", name},
          {"kind", kind},
          {"target", target},
          {"version", version},
          {"path", path},
          {"face_sha256", face_sha256},
          {"json_sha256", json_sha256},
          {"author", author},
          {"producer", producer}};
}

Result<ArtifactRecord> ArtifactRecord::from_json(const json& j) {
  try {
    ArtifactRecord r;
    r.name = j.at("name").get<std::string>();
    r.kind = j.at("kind").get<std::string>();
    r.target = j.at("target").get<std::string>();
    r.version = j.at("version").get<int>();
    r.path = j.at("path").get<std::string>();
    r.face_sha256 = j.at("face_sha256").get<std::string>();
    r.json_sha256 = j.at("json_sha256").get<std::string>();
    r.author = j.at("author").get<std::string>();
    r.producer = j.at("producer").get<std::string>();
    return r;
  } catch (const json::exception& e) {
    return make_error(ErrorCode::corruption, std::string("malformed artifact record: ") + e.what());
  }
}

json Reservation::to_json() const {
  return {{"id", id}, {"scene_id", scene_id}, {"shot_id", shot_id}, {"amount_micro_usd", amount_micro_usd},
          {"purpose", purpose}};
}

Result<Reservation> Reservation::from_json(const json& j) {
  try {
    return Reservation{j.at("id").get<std::string>(), j.at("scene_id").get<std::string>(),
                       j.at("shot_id").get<std::string>(), j.at("amount_micro_usd").get<int64_t>(),
                       j.at("purpose").get<std::string>()};
  } catch (const json::exception& e) {
    return make_error(ErrorCode::corruption, std::string("malformed reservation: ") + e.what());
  }
}

json ReservationEnd::to_json() const {
  json j = {{"id", id}, {"settled_micro_usd", settled_micro_usd}, {"released_micro_usd", released_micro_usd},
            {"how", how}};
  j["provider_cost_micro_usd"] = provider_cost_micro_usd ? json(*provider_cost_micro_usd) : json(nullptr);
  return j;
}

Result<ReservationEnd> ReservationEnd::from_json(const json& j) {
  try {
    ReservationEnd e{j.at("id").get<std::string>(), j.at("settled_micro_usd").get<int64_t>(),
                     j.at("released_micro_usd").get<int64_t>(), std::nullopt, j.at("how").get<std::string>()};
    if (!j.at("provider_cost_micro_usd").is_null()) {
      e.provider_cost_micro_usd = j["provider_cost_micro_usd"].get<int64_t>();
    }
    return e;
  } catch (const json::exception& e) {
    return make_error(ErrorCode::corruption, std::string("malformed reservation end: ") + e.what());
  }
}

std::optional<LogRow> Event::row() const {
  if (!body.contains("row")) {
    return std::nullopt;
  }
  Result<LogRow> r = LogRow::from_json(body["row"]);
  return r ? std::optional<LogRow>(*r) : std::nullopt;
}

std::optional<ArtifactRecord> Event::artifact() const {
  if (kind != "artifact.recorded" || !body.contains("artifact")) {
    return std::nullopt;
  }
  Result<ArtifactRecord> r = ArtifactRecord::from_json(body["artifact"]);
  if (!r) {
    return std::nullopt;
  }
  r->event_seq = seq;
  return *r;
}

fs::path ledger_path(const fs::path& project_dir) { return project_dir / ".avps" / "ledger.db"; }
fs::path building_ledger_path(const fs::path& project_dir) { return project_dir / ".avps" / "ledger.db.new"; }
fs::path head_path(const fs::path& project_dir) { return project_dir / ".avps" / "HEAD"; }
fs::path run_log_path(const fs::path& project_dir) { return project_dir / k_run_log_relative; }

bool writer_active(const fs::path& project_dir) {
  struct stat st {};
  return ::stat((project_dir / ".avps" / "lock").c_str(), &st) == 0 && flock_writer_pid(st.st_ino).has_value();
}

std::string render_run_log(const std::vector<Event>& events) {
  std::string out = run_log_header();
  for (const Event& e : events) {
    if (std::optional<LogRow> row = e.row()) {
      out += row_line(*row, e.hash);
    }
  }
  return out;
}

// --- The SQLite implementation ---------------------------------------------------------------

// The one implementation of Ledger today (ledger.hpp): everything in .avps/ledger.db. Its state is
// in Impl, guarded by Impl::mutex.
class SqliteLedger final : public Ledger {
 public:
  struct Impl;
  explicit SqliteLedger(std::unique_ptr<Impl> impl);
  ~SqliteLedger() override;

  void set_budget_basis(int64_t project_cap_micro_usd) override;
  Result<std::string> begin_run(const std::string& command, const nlohmann::json& details) override;
  Result<void> end_run(const std::string& outcome, const nlohmann::json& details) override;
  const std::string& run_id() const override;
  Result<std::vector<Event>> commit(std::vector<EventDraft> drafts, Sync sync) override;
  Result<void> sync() override;
  Result<void> flush() override;
  Result<Event> reserve(const Reservation& reservation, const Caps& caps, EventDraft event) override;
  Result<Spend> spend(const std::string& scene_id, const std::string& shot_id) const override;
  Result<std::map<std::string, Spend>> spend_per(SpendScope scope) const override;
  Result<std::vector<Reservation>> open_reservations() const override;
  Result<BudgetTotals> budget_totals() const override;
  Result<std::unique_ptr<Ledger>> another_reader() const override;
  Result<std::vector<Event>> events(const EventQuery& query) const override;
  using Ledger::events;
  Result<std::vector<ArtifactRecord>> artifacts(int64_t after_event_seq) const override;
  Result<std::vector<Event>> unfinished_intents() const override;
  Result<std::optional<ArtifactRecord>> find_artifact(const std::string& name) const override;
  Result<std::optional<ArtifactRecord>> latest_artifact(const std::string& kind,
                                                        const std::string& target) const override;
  Head head() const override;
  std::vector<core::Violation> verify(EventVisitor* also, const VerifiedPoint* since,
                                      VerifiedPoint* reached) const override;
  using Ledger::verify;
  Result<void> copy_prefix(const std::filesystem::path& dst_project_dir, int64_t through_seq) const override;
  const std::filesystem::path& project_dir() const override;
  Result<std::string> put_object(std::string_view bytes) override;
  Result<std::optional<std::string>> object(const std::string& sha256) const override;

 private:
  std::unique_ptr<Impl> m_impl;
};

struct SqliteLedger::Impl {
  fs::path project_dir;
  const core::Clock* clock = nullptr;
  OpenMode mode = OpenMode::read_only;
  Db db;
  int lock_fd = -1;
  mutable std::mutex mutex;  // one commit at a time; the engine calls from several threads
  Head head;
  std::string run_id;
  // The runs started so far, counted at the first begin_run (a scan of every event: only a run
  // pays for it, never a reader), then kept.
  std::optional<int64_t> run_count;
  // read_only: the head mirror read, and the run log opened, before the snapshot began.
  std::optional<Result<std::string>> snapshot_head;
  std::unique_ptr<RunLogAsOpened> snapshot_run_log;
  // The writer's durability and mirrors (under `mutex`): the last event known durable, what HEAD
  // and the CSV face on disk hold (`mirrored_head` and the rows after it, not yet appended), and when
  // they were last brought up to date. A mirror write that failed is not tried again by this
  // process (a torn CSV append must not be followed by another): the next writing open
  // completes them.
  int64_t synced_seq = 0;
  // SqliteLedger::artifacts: every artifact row with rowid <= artifacts_cursor_rowid was recorded
  // by artifacts_cursor_seq (the head when that was read); -1: not read yet.
  int64_t artifacts_cursor_seq = -1;
  int64_t artifacts_cursor_rowid = 0;
  Head mirrored_head;
  std::string unmirrored_rows;
  std::chrono::steady_clock::time_point mirrored_at = std::chrono::steady_clock::now();
  bool mirrors_failed = false;

  // The ledger's mutex for a call that only reads the database through `db`: not taken by a
  // reader (read_only), whose connection is safe from several threads (Db) and whose state does
  // not change after open, so such a read runs beside another, and beside verify()'s pass.
  std::unique_lock<std::mutex> lock_unless_reader() const {
    return mode == OpenMode::read_only ? std::unique_lock<std::mutex>() : std::unique_lock<std::mutex>(mutex);
  }

  ~Impl() {
    if (lock_fd >= 0) {
      ::close(lock_fd);  // releases the flock
    }
  }

  Result<void> take_writer_lock() {
    // flock on .avps/lock, held for the process's life. Nothing is written into the file, so a
    // command that ends up changing nothing leaves the project byte-identical.
    fs::path lock_path = project_dir / ".avps" / "lock";
    lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) {
      return make_error(ErrorCode::io_error, "cannot open " + lock_path.string() + ": " + std::strerror(errno));
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      return make_error(ErrorCode::unsupported, "another avps process (" + lock_holder(lock_fd) +
                                                    ") is writing this project; wait for it to finish");
    }
    return ok();
  }

  // "pid N" of the process holding the flock on `fd`; "pid unknown" where /proc/locks cannot say.
  static std::string lock_holder(int fd) {
    struct stat st {};
    std::optional<std::string> pid = ::fstat(fd, &st) == 0 ? flock_writer_pid(st.st_ino) : std::nullopt;
    return "pid " + pid.value_or("unknown");
  }

  Result<void> configure() {
    AVPS_TRY(db.exec("PRAGMA journal_mode=WAL"));
    // NORMAL: SQLite does not sync the log at each commit; the ledger does, once for a group of
    // commits (sync_log). The log is checksummed frame by frame, so what a power cut leaves is
    // the ledger as of some commit, and every commit up to the last sync.
    AVPS_TRY(db.exec("PRAGMA synchronous=NORMAL"));
    AVPS_TRY(db.exec("PRAGMA foreign_keys=ON"));
    return ok();
  }

  // An opened file must be an avps ledger: its application_id says so, and a user_version of 0
  // (an SQLite file avps never initialised) is only ever seen by create().
  Result<void> check_identity() {
    AVPS_TRY_ASSIGN(int64_t app_id, query_int(db, "PRAGMA application_id"));
    AVPS_TRY_ASSIGN(int64_t version, query_int(db, "PRAGMA user_version"));
    if (app_id != k_application_id || version == 0) {
      return make_error(ErrorCode::corruption, ledger_path(project_dir).string() +
                                                   " is not an avps ledger (another SQLite database is in its place); "
                                                   "nothing was changed; restore the ledger from a backup");
    }
    return ok();
  }

  Result<void> migrate() {
    AVPS_TRY_ASSIGN(int64_t app_id, query_int(db, "PRAGMA application_id"));
    AVPS_TRY_ASSIGN(int64_t version, query_int(db, "PRAGMA user_version"));
    if (version > 0 && app_id != k_application_id) {
      return make_error(ErrorCode::corruption, ledger_path(project_dir).string() + " is not an avps ledger");
    }
    if (version > k_schema_version) {
      return make_error(ErrorCode::unsupported,
                        "the ledger has schema version " + std::to_string(version) +
                            ", newer than this avps understands (" + std::to_string(k_schema_version) +
                            "); upgrade avps");
    }
    if (version == k_schema_version || (mode == OpenMode::read_only && version >= k_oldest_readable_schema)) {
      return ok();
    }
    if (mode == OpenMode::read_only) {
      return make_error(ErrorCode::unsupported, "the ledger has an older schema (" + std::to_string(version) +
                                                    "); run a writing avps command to migrate it");
    }
    AVPS_TRY(db.exec("BEGIN IMMEDIATE"));
    for (const Migration& m : k_migrations) {
      if (m.version <= version) {
        continue;
      }
      Result<void> applied = db.exec(m.sql);
      if (!applied) {
        std::ignore = db.exec("ROLLBACK");  // the migration error is the one to report
        return applied;
      }
    }
    Result<void> stamped = db.exec("PRAGMA application_id=" + std::to_string(k_application_id) +
                                   "; PRAGMA user_version=" + std::to_string(k_schema_version));
    if (!stamped) {
      std::ignore = db.exec("ROLLBACK");
      return stamped;
    }
    return db.exec("COMMIT");
  }

  Result<void> load_head() {
    Stmt stmt(db, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1");
    if (!stmt.valid()) {
      return db.error("cannot read ledger head");
    }
    AVPS_TRY_ASSIGN(bool has_row, stmt.step());
    head = Head{};
    if (has_row) {
      head.seq = stmt.integer(0);
      head.hash = stmt.text(1);
    }
    return ok();
  }

  // The SQL that takes `members` out of a body (EventQuery::members) as one column, "" for none:
  // json_extract with two paths or more gives a JSON array of their values (null where absent), so
  // one member is asked for twice. Its paths are bound by bind_members.
  static std::string members_column(const std::vector<std::string>& members, const std::string& only_when = "") {
    if (members.empty()) {
      return "";
    }
    std::string sql = ", CASE WHEN " + only_when + "json_valid(body) THEN json_extract(body";
    for (size_t i = 0; i < std::max<size_t>(members.size(), 2); ++i) {
      sql += ", ?";
    }
    return sql + ") END";
  }
  static Result<void> bind_members(Stmt& stmt, int& column, const std::vector<std::string>& members) {
    for (size_t i = 0; !members.empty() && i < std::max<size_t>(members.size(), 2); ++i) {
      const std::string& member = members[std::min(i, members.size() - 1)];
      if (member.find_first_of("\"\\") != std::string::npos) {
        return make_error(ErrorCode::invalid_argument, "internal error: a body member named " + member);
      }
      stmt.bind(column++, "$.\"" + member + "\"");
    }
    return ok();
  }
  // An event's body as a reader asked for it: with `members` (read from column `members_at`, made
  // by members_column), only those it has, not null; without, or when the body is not valid JSON
  // (the column is null), the whole body (column 4) parsed, which fails for invalid JSON.
  static Result<json> body_members(const Stmt& stmt, int members_at, const std::vector<std::string>& members,
                                   int64_t seq) {
    if (members_at >= 0 && !stmt.is_null(members_at)) {
      json values = json::parse(stmt.text_view(members_at), nullptr, /*allow_exceptions=*/false);
      json body = json::object();
      for (size_t i = 0; i < members.size() && values.is_array() && i < values.size(); ++i) {
        if (!values[i].is_null()) {
          body[members[i]] = std::move(values[i]);
        }
      }
      return body;
    }
    Result<json> body = core::parse_json(stmt.text_view(4), "ledger event " + std::to_string(seq));
    if (!body) {
      return make_error(ErrorCode::corruption, body.error().message);
    }
    return body;
  }

  Result<std::vector<Event>> read_events(int64_t after_seq, int64_t limit = -1,
                                         const std::set<std::string>& bodiless = {},
                                         const std::set<std::string>& kinds = {},
                                         const std::vector<std::string>& members = {}, bool bodies = true) const {
    const size_t paths = members.size();
    std::string sql = "SELECT seq, run_id, ts, kind, body, prev_hash, hash" + members_column(members);
    sql += " FROM events WHERE seq > ?";
    if (!kinds.empty()) {
      sql += " AND kind IN (";
      for (size_t i = 0; i < kinds.size(); ++i) {
        sql += i == 0 ? "?" : ", ?";
      }
      sql += ")";
    }
    sql += " ORDER BY seq LIMIT ?";
    Stmt stmt(db, sql.c_str());
    if (!stmt.valid()) {
      return db.error("cannot read ledger events");
    }
    int column = 1;
    AVPS_TRY(bind_members(stmt, column, members));
    stmt.bind(column++, after_seq);
    for (const std::string& kind : kinds) {
      stmt.bind(column++, kind);
    }
    stmt.bind(column, limit);
    std::vector<Event> out;
    for (;;) {
      AVPS_TRY_ASSIGN(bool has_row, stmt.step());
      if (!has_row) {
        break;
      }
      Event e = event_without_body(stmt);
      if (!bodies || bodiless.count(e.kind)) {
        e.body = json::object();
      } else {
        AVPS_TRY_ASSIGN(e.body, body_members(stmt, paths > 0 ? 7 : -1, members, e.seq));
      }
      out.push_back(std::move(e));
    }
    return out;
  }

  // Events as the ledger's own checks need them, one at a time, none kept: each body holds only
  // the parts the ledger indexes and mirrors ("row", "artifact", "reservation",
  // "reservation_end"), taken out by SQLite's JSON functions, so the bulk of the bodies is never
  // parsed. With `check_hashes`, `each` also gets whether the event's stored bytes hash to its
  // recorded hash (else true): the hash is of the canonical form, and a body is stored in it, so
  // the stored text is hashed as it is (a body rewritten in any other form no longer matches,
  // which is what it is: an edit).
  //
  // With `also`, the same pass hands each event to `also->each` too, its body with only
  // `also->members` (as read_events gives them), so a caller that reads every event as well does
  // not make a pass of its own. Its first failure (a body that is not JSON, or `each`'s own) ends
  // what it is given and is kept in `also->failed`; this scan goes on.
  //
  // Events up to `parts_after` are read for their hashes alone (verify from a VerifiedPoint): each
  // comes with an empty body and is not given to `also`, and SQLite parses none of them.
  Result<void> scan_event_parts(bool check_hashes, const std::function<Result<void>(Event&&, bool hash_matches)>& each,
                                Ledger::EventVisitor* also = nullptr, int64_t parts_after = 0) const {
    // Every member either reader wants, taken out by one json_extract (SQLite parses a body once
    // per call): the ledger's own parts first, then the visitor's others. :after is parameter 1,
    // named before the members' paths, which come next.
    static const std::vector<std::string> k_parts = {"row", "artifact", "reservation", "reservation_end"};
    std::vector<std::string> paths = k_parts;
    // The visitor's members, then its kind_members, each with its place in `paths`. The members of
    // some kinds only come last: an event of another kind has only the paths before them taken
    // out (`common` of them), so their places lie past the end of its values.
    std::vector<const std::string*> visitor_members;
    std::vector<size_t> visitor_at;
    auto place = [&](const std::string& member) {
      auto found = std::find(paths.begin(), paths.end(), member);
      visitor_members.push_back(&member);
      visitor_at.push_back(static_cast<size_t>(found - paths.begin()));
      if (found == paths.end()) {
        paths.push_back(member);
      }
    };
    if (also != nullptr) {
      for (const std::string& member : also->members) {
        place(member);
      }
    }
    const size_t common = paths.size();
    if (also != nullptr && !also->member_kinds.empty()) {
      for (const std::string& member : also->kind_members) {
        place(member);
      }
    }
    // json_extract of the first `count` paths: with two paths or more it gives a JSON array of
    // their values (null where absent), so a single one is asked for twice (bind_members).
    auto extract = [](size_t count) {
      std::string sql = "json_extract(body";
      for (size_t i = 0; i < std::max<size_t>(count, 2); ++i) {
        sql += ", ?";
      }
      return sql + ")";
    };
    std::string members_sql = extract(paths.size());
    if (paths.size() > common) {
      std::string kinds;
      for (size_t i = 0; i < also->member_kinds.size(); ++i) {
        kinds += i == 0 ? "?" : ", ?";
      }
      members_sql = "CASE WHEN kind IN (" + kinds + ") THEN " + members_sql + " ELSE " + extract(common) + " END";
    }
    Stmt stmt(db,
              ("SELECT seq, run_id, ts, kind, body, prev_hash, hash, CASE WHEN seq > :after THEN json_valid(body) "
               "ELSE 1 END, CASE WHEN seq > :after AND json_valid(body) THEN " +
               members_sql + " END FROM events ORDER BY seq")
                  .c_str());
    if (!stmt.valid()) {
      return db.error("cannot read ledger events");
    }
    stmt.bind(1, parts_after);
    int bound = 2;
    if (paths.size() > common) {
      for (const std::string& kind : also->member_kinds) {
        stmt.bind(bound++, kind);
      }
    }
    AVPS_TRY(bind_members(stmt, bound, paths));
    if (paths.size() > common) {
      AVPS_TRY(bind_members(stmt, bound, std::vector<std::string>(paths.begin(), paths.begin() + static_cast<std::ptrdiff_t>(common))));
    }
    auto fail_visitor = [&](Error error) {
      if (also != nullptr && !also->failed) {
        also->failed = std::move(error);
      }
    };
    // A text field as canonical JSON writes it. Kinds, run ids and timestamps need no escape, so
    // they are quoted as they are; only another text goes through the JSON library.
    auto quoted = [](const std::string& text) -> std::optional<std::string> {
      const bool plain = std::all_of(text.begin(), text.end(), [](unsigned char c) {
        return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
      });
      if (plain) {
        return "\"" + text + "\"";
      }
      try {
        return json(text).dump(-1, ' ', false, json::error_handler_t::strict);
      } catch (const json::exception&) {
        return std::nullopt;
      }
    };
    for (;;) {
      Result<bool> has_row = stmt.step();
      if (!has_row) {
        fail_visitor(has_row.error());
        return std::move(has_row).error();
      }
      if (!*has_row) {
        break;
      }
      Event e = event_without_body(stmt);
      const bool valid = stmt.integer(7) != 0;
      // The members' values in `paths` order (null where absent); discarded when the body was not
      // read (up to parts_after) or is not JSON.
      json values = stmt.is_null(8) ? json(json::value_t::discarded)
                                    : json::parse(stmt.text_view(8), nullptr, /*allow_exceptions=*/false);
      if (also != nullptr && !also->failed && e.seq > parts_after) {
        Event visited{e.seq, e.run_id, e.timestamp, e.kind, json::object(), e.prev_hash, e.hash};
        if (!values.is_array()) {
          // Not JSON: the whole body parsed, for the error events() gives.
          Result<json> body = body_members(stmt, -1, also->members, e.seq);
          if (!body) {
            fail_visitor(body.error());
          } else {
            visited.body = std::move(body).value();
          }
        } else {
          for (size_t i = 0; i < visitor_members.size(); ++i) {
            const size_t at = visitor_at[i];
            if (at < values.size() && !values[at].is_null()) {
              // A member the ledger's own parts (below) do not read is the visitor's alone: moved,
              // not copied (an artifact's details, an intent: a third of what the pass parses).
              // (A member named twice maps to one place: moved once, then null, and skipped.)
              visited.body[*visitor_members[i]] = at < k_parts.size() ? values[at] : std::move(values[at]);
            }
          }
        }
        if (!also->failed) {
          if (Result<void> taken = also->each(std::move(visited)); !taken) {
            fail_visitor(taken.error());
          }
        }
      }
      e.body = json::object();
      for (size_t i = 0; i < k_parts.size() && values.is_array() && i < values.size(); ++i) {
        if (!values[i].is_null()) {
          e.body[k_parts[i]] = std::move(values[i]);
        }
      }
      bool matches = true;
      if (check_hashes) {
        std::optional<std::string> kind = quoted(e.kind), run = quoted(e.run_id), ts = quoted(e.timestamp);
        matches = false;
        if (valid && kind && run && ts) {
          // The canonical event, hashed in pieces: the body as stored, never copied.
          const std::string seq = std::to_string(e.seq);
          matches = core::sha256_hex_joined({e.prev_hash, "{\"body\":", stmt.text_view(4), ",\"kind\":", *kind,
                                             ",\"run_id\":", *run, ",\"seq\":", seq, ",\"ts\":", *ts, "}"}) == e.hash;
        }
      }
      AVPS_TRY(each(std::move(e), matches));
    }
    return ok();
  }

  // The mirrors verify() compares: of a reader, as read before its snapshot; the writer's now.
  Mirrors mirrors_to_verify() const {
    return snapshot_run_log ? Mirrors{*snapshot_head, snapshot_run_log->read()} : read_mirrors(project_dir);
  }

  // A digest of the rows the artifact index and the budget tables hold for the events up to
  // `through_seq` (a VerifiedPoint's tables_sha256), every column as SQLite gives it as text; and,
  // in the same reading, the digest up to `also_through` (>= through_seq) into `also` when given.
  Result<std::string> tables_digest(int64_t through_seq, int64_t also_through = 0, std::string* also = nullptr) const {
    core::Sha256 digest;
    core::Sha256 further;
    const int64_t bound = also != nullptr ? std::max(through_seq, also_through) : through_seq;
    for (const char* table : {"artifacts", "reservations", "reservation_ends"}) {
      const std::string header = std::string(table) + "\n";
      digest.update(header);
      further.update(header);
      // The rows are appended in event order, so their rowid order is event order and the table
      // is read as it lies: sorting it by event_seq took a temporary B-tree that spilled to a
      // file at 500 scenes. A row out of that order (which avps never writes) has the table read
      // again sorted, from the digests as they were before it.
      core::Sha256 digest_before = digest.fork();
      core::Sha256 further_before = further.fork();
      AVPS_TRY_ASSIGN(bool in_order, digest_rows(table, "rowid", through_seq, bound, digest, further));
      if (!in_order) {
        digest = std::move(digest_before);
        further = std::move(further_before);
        AVPS_TRY(digest_rows(table, "event_seq, rowid", through_seq, bound, digest, further));
      }
    }
    if (also != nullptr) {
      *also = further.hex();
    }
    return digest.hex();
  }

  // tables_digest's rows of `table` up to event `bound` in `order`: every column as SQLite gives
  // it as text, those up to `through_seq` into both digests, the rest into `further` alone. False,
  // with the digests part-way, when a row's event_seq is below the one before it.
  Result<bool> digest_rows(const char* table, const char* order, int64_t through_seq, int64_t bound,
                           core::Sha256& digest, core::Sha256& further) const {
    Stmt stmt(db, ("SELECT * FROM " + std::string(table) + " WHERE event_seq <= ? ORDER BY " + order).c_str());
    if (!stmt.valid()) {
      return db.error("cannot read the ledger's " + std::string(table));
    }
    stmt.bind(1, bound);
    const int seq_column = stmt.column_index("event_seq");
    if (seq_column < 0) {
      return make_error(ErrorCode::corruption, "the ledger's " + std::string(table) + " has no event_seq column");
    }
    int64_t last_seq = INT64_MIN;
    for (;;) {
      AVPS_TRY_ASSIGN(bool has_row, stmt.step());
      if (!has_row) {
        return true;
      }
      const int64_t seq = stmt.integer(seq_column);
      if (seq < last_seq) {
        return false;
      }
      last_seq = seq;
      const bool in_point = seq <= through_seq;
      for (int column = 0; column < stmt.columns(); ++column) {
        const std::string_view text = stmt.is_null(column) ? std::string_view("\x01null") : stmt.text_view(column);
        if (in_point) {
          digest.update(text);
          digest.update("\x1f");
        }
        further.update(text);
        further.update("\x1f");
      }
      if (in_point) {
        digest.update("\n");
      }
      further.update("\n");
    }
  }

  // Whether `point` still holds (Ledger::VerifiedPoint): the event and its hash, the tables'
  // digest, and the CSV face's first bytes as `run_log` has them. `face` is given those bytes as it
  // checks them (the caller's digest of the whole face goes on from there); the tables' digest up to
  // `head_seq` is left in `tables_at_head` when asked for.
  Result<bool> point_holds(const Ledger::VerifiedPoint& point, const Result<std::string>& run_log, core::Sha256& face,
                           int64_t head_seq, std::string* tables_at_head) const {
    if (point.seq <= 0 || !run_log || run_log->size() < point.run_log_bytes) {
      return false;
    }
    face.update(std::string_view(*run_log).substr(0, point.run_log_bytes));
    if (face.fork().hex() != point.run_log_sha256) {
      return false;
    }
    Stmt stmt(db, "SELECT hash FROM events WHERE seq = ?");
    if (!stmt.valid()) {
      return db.error("cannot read ledger events");
    }
    stmt.bind(1, point.seq);
    AVPS_TRY_ASSIGN(bool has_row, stmt.step());
    if (!has_row || stmt.text(0) != point.hash) {
      return false;
    }
    AVPS_TRY_ASSIGN(std::string tables, tables_digest(point.seq, head_seq, tables_at_head));
    return tables == point.tables_sha256;
  }

  // One fdatasync of the write-ahead log (through the VFS, so the fault plan counts it): every
  // commit so far is then durable.
  Result<void> sync_log() {
    sqlite3_file* log = nullptr;
    if (sqlite3_file_control(db.get(), "main", SQLITE_FCNTL_JOURNAL_POINTER, &log) != SQLITE_OK || log == nullptr ||
        log->pMethods == nullptr) {
      return make_error(ErrorCode::io_error, "cannot sync " + ledger_path(project_dir).string() +
                                                 "-wal: the ledger's write-ahead log is not open");
    }
    if (int rc = log->pMethods->xSync(log, SQLITE_SYNC_NORMAL); rc != SQLITE_OK) {
      return make_error(ErrorCode::io_error,
                        "cannot sync " + ledger_path(project_dir).string() + "-wal: " + sqlite3_errstr(rc));
    }
    return ok();
  }

  // Makes every commit durable (when one is not yet), then writes the mirrors when `force` or
  // when they lag by the documented bound.
  Result<void> sync_locked(bool force_mirrors) {
    if (synced_seq < head.seq) {
      core::crash_point("ledger.before_sync");
      AVPS_TRY(sync_log());
      synced_seq = head.seq;
      core::crash_point("ledger.after_sync");
    }
    const bool behind = mirrored_head.seq != head.seq || !unmirrored_rows.empty();
    const bool due = force_mirrors || head.seq - mirrored_head.seq >= k_mirror_lag_events ||
                     std::chrono::steady_clock::now() - mirrored_at >= std::chrono::milliseconds(k_mirror_lag_ms);
    if (!behind || !due || mirrors_failed) {
      return ok();
    }
    // Only durable events are mirrored (synced_seq == head.seq here): a power cut never leaves a
    // mirror ahead of the ledger.
    mirrors_failed = true;  // until both are written
    if (mirrored_head.seq != head.seq) {
      AVPS_TRY(write_head(project_dir, head));
      core::crash_point("ledger.after_head");
    }
    if (!unmirrored_rows.empty()) {
      AVPS_TRY(core::append_file_durable(run_log_path(project_dir), unmirrored_rows));
      unmirrored_rows.clear();
    }
    mirrors_failed = false;
    mirrored_head = head;
    mirrored_at = std::chrono::steady_clock::now();
    return ok();
  }

  // Whether the CSV face ends with the line of the last event that carries a row. With HEAD at the
  // ledger's head, that makes both mirrors current (HEAD is written before the rows it covers, so
  // a crash between the two leaves HEAD current and the face behind it: not this). Only the face's
  // last line is read: whether an earlier line was edited is for verify (`avps gate`, and the
  // integrity check a run starts with) to find, and comparing the whole face made every writing
  // open cost the whole history.
  Result<bool> run_log_ends_at_last_row() const {
    Stmt stmt(db,
              "SELECT hash, CASE WHEN json_valid(body) THEN json_extract(body, '$.row') END "
              "FROM events ORDER BY seq DESC");
    if (!stmt.valid()) {
      return db.error("cannot read ledger events");
    }
    for (;;) {
      AVPS_TRY_ASSIGN(bool has_event, stmt.step());
      if (!has_event) {
        return false;  // no row yet: the whole comparison is as cheap
      }
      if (stmt.is_null(1)) {
        continue;
      }
      Event carrier;
      carrier.body = json::object();
      carrier.body["row"] = json::parse(stmt.text(1), nullptr, /*allow_exceptions=*/false);
      const std::optional<LogRow> row = carrier.row();  // as render_run_log reads it
      if (!row) {
        continue;  // not a row the face shows (render_run_log skips it too)
      }
      const std::string line = row_line(*row, stmt.text(0));
      Result<std::string> tail = core::read_file_tail(run_log_path(project_dir), line.size());
      if (!tail) {
        return tail.error().code == ErrorCode::not_found ? Result<bool>(false) : Result<bool>(std::move(tail).error());
      }
      return *tail == line;
    }
  }

  // After a crash between the SQLite commit and the mirrors: bring HEAD and the CSV face up to
  // the ledger, but only where they are a true prefix of it.
  Result<void> complete_mirrors() {
    AVPS_TRY_ASSIGN(std::optional<Head> mirrored, read_head(project_dir));
    if (!mirrored) {
      if (head.seq != 0) {
        return make_error(ErrorCode::corruption,
                          ".avps/HEAD is missing but the ledger has events; run `avps gate` to see what changed");
      }
    } else if (mirrored->seq > head.seq) {
      return make_error(ErrorCode::corruption,
                        ".avps/HEAD records event " + std::to_string(mirrored->seq) + " but the ledger ends at " +
                            std::to_string(head.seq) + ": events were removed; run `avps gate` for details");
    } else if (mirrored->seq == head.seq && mirrored->hash != head.hash) {
      return make_error(ErrorCode::corruption, ".avps/HEAD does not match the ledger's last event; run `avps gate`");
    }
    if (mirrored && mirrored->seq == head.seq) {
      AVPS_TRY_ASSIGN(bool face_current, run_log_ends_at_last_row());
      if (face_current) {
        return ok();  // the usual open, after a run that ended or was cut between syncs
      }
    }
    // The CSV face as it is, compared with what the ledger says line by line as the events pass:
    // no event is kept (at 500 scenes every event's parts, held at once, were 250 MB of a resumed
    // run's memory), and the face the ledger says is made whole only when the file differs (its
    // matching prefix taken from the file, the rest rendered).
    Result<std::string> actual = core::read_file(run_log_path(project_dir));
    const std::string current = actual ? *actual : "";
    size_t matched = 0;    // bytes of `current` the ledger's face starts with so far
    bool diverged = false;  // a line the ledger says is not the file's at `matched`
    std::string rest;       // the ledger's face after `matched`, once diverged
    auto expect = [&](const std::string& line) {
      if (!diverged && current.compare(matched, line.size(), line) == 0) {
        matched += line.size();
      } else {
        diverged = true;
        rest += line;
      }
    };
    expect(run_log_header());
    auto head_mismatch = [&] {
      return make_error(ErrorCode::corruption,
                        ".avps/HEAD does not match ledger event " + std::to_string(mirrored->seq) + "; run `avps gate`");
    };
    size_t index = 0;
    // (The rows and hashes are all the mirrors hold: no body is parsed whole.)
    AVPS_TRY(scan_event_parts(false, [&](Event&& e, bool) -> Result<void> {
      if (mirrored && mirrored->seq > 0 && mirrored->seq < head.seq &&
          index == static_cast<size_t>(mirrored->seq - 1) && (e.seq != mirrored->seq || e.hash != mirrored->hash)) {
        return head_mismatch();
      }
      ++index;
      if (std::optional<LogRow> row = e.row()) {
        expect(row_line(*row, e.hash));
      }
      return ok();
    }));
    if (mirrored && mirrored->seq > 0 && mirrored->seq < head.seq && index < static_cast<size_t>(mirrored->seq)) {
      return head_mismatch();
    }
    if (!mirrored || mirrored->seq != head.seq) {
      AVPS_TRY(write_head(project_dir, head));
    }
    if (!actual && actual.error().code != ErrorCode::not_found) {
      return std::move(actual).error();
    }
    if (!diverged && matched == current.size()) {
      return ok();
    }
    const std::string expected = current.substr(0, matched) + rest;
    // The face may lag (rows not yet appended) or end in a torn line; keep only complete lines
    // and require them to be a prefix of what the ledger says.
    size_t last_newline = current.rfind('\n');
    std::string complete = last_newline == std::string::npos ? "" : current.substr(0, last_newline + 1);
    if (expected.compare(0, complete.size(), complete) != 0) {
      return make_error(ErrorCode::corruption, std::string(k_run_log_relative) +
                                                   " differs from the ledger (not just a torn tail); run `avps gate`");
    }
    AVPS_TRY(core::create_directories_durable(run_log_path(project_dir).parent_path()));
    return core::write_file_atomic(run_log_path(project_dir), expected, core::Overwrite::yes,
                                   core::Durability::durable);
  }

  // Spend against a scope, inside the caller's transaction (or outside one, for reads).
  // The project's spend, from the writer's running totals: only the process holding the writer
  // lock changes reservations, so after one sum at first use every commit keeps them exact
  // (a sum over every reservation per call would make a long production quadratic).
  mutable std::optional<Spend> project_spend;
  std::optional<int64_t> budget_cap;  ///< set_budget_basis: the cap run-log rows' budget_pct is of

  // A scene's and a shot's spend likewise, each summed at its first read (every scene's budget
  // check reads every scene and shot that has a cap): reservation_ends names no scene, so an end
  // moves the totals of its reservation's scene and shot (commit()).
  mutable std::map<std::string, Spend> scene_spend;
  mutable std::map<std::string, Spend> shot_spend;

  Result<Spend> spend_of(const std::string& scene_id, const std::string& shot_id) const {
    if (mode != OpenMode::read_write) {
      return sum_spend(scene_id, shot_id);
    }
    if (!scene_id.empty() || !shot_id.empty()) {
      std::map<std::string, Spend>& kept = shot_id.empty() ? scene_spend : shot_spend;
      const std::string& key = shot_id.empty() ? scene_id : shot_id;
      if (auto known = kept.find(key); known != kept.end()) {
        return known->second;
      }
      AVPS_TRY_ASSIGN(Spend sum, sum_spend(scene_id, shot_id));
      kept[key] = sum;
      return sum;
    }
    if (!project_spend) {
      AVPS_TRY_ASSIGN(Spend sum, sum_spend("", ""));
      project_spend = sum;
    }
    return *project_spend;
  }

  // The two sums a Spend is made of, over the reservations `where` picks: committed (what the
  // ended ones settled) and outstanding (what the open ones hold). Each selects `columns` before
  // its sum, and ends with `tail` (a GROUP BY for spend_per).
  static std::array<std::string, 2> spend_sql(const std::string& columns, const std::string& where,
                                               const std::string& tail) {
    return {"SELECT " + columns +
                "COALESCE(SUM(e.settled_micro_usd), 0) FROM reservation_ends e JOIN reservations r ON r.id = e.id "
                "WHERE " + where + tail,
            "SELECT " + columns +
                "COALESCE(SUM(r.amount_micro_usd), 0) FROM reservations r LEFT JOIN reservation_ends e ON e.id = r.id "
                "WHERE e.id IS NULL AND " + where + tail};
  }

  Result<Spend> sum_spend(const std::string& scene_id, const std::string& shot_id) const {
    std::string where = shot_id.empty() ? (scene_id.empty() ? "1" : "r.scene_id = ?1") : "r.shot_id = ?1";
    const std::array<std::string, 2> sql = spend_sql("", where, "");
    Spend out;
    for (int pass = 0; pass < 2; ++pass) {
      Stmt stmt(db, sql[pass].c_str());
      if (!stmt.valid()) {
        return db.error("cannot read the budget");
      }
      if (!shot_id.empty()) {
        stmt.bind(1, shot_id);
      } else if (!scene_id.empty()) {
        stmt.bind(1, scene_id);
      }
      AVPS_TRY(stmt.step());
      (pass == 0 ? out.committed_micro_usd : out.outstanding_micro_usd) = stmt.integer(0);
    }
    return out;
  }

  // budget_exceeded when `r` does not fit under one of `caps`; called inside the transaction.
  Result<void> check_caps(const Reservation& r, const Caps& caps) const {
    struct Scope {
      const char* name;
      std::string scene, shot;
      std::optional<int64_t> cap;
    };
    const Scope scopes[] = {{"project", "", "", caps.project_micro_usd},
                            {"scene", r.scene_id, "", r.scene_id.empty() ? std::nullopt : caps.scene_micro_usd},
                            {"shot", "", r.shot_id, r.shot_id.empty() ? std::nullopt : caps.shot_micro_usd}};
    for (const Scope& scope : scopes) {
      if (!scope.cap) {
        continue;
      }
      AVPS_TRY_ASSIGN(Spend spent, spend_of(scope.scene, scope.shot));
      if (spent.total() + r.amount_micro_usd > *scope.cap) {
        std::string label = std::string(scope.name) + (scope.scene.empty() ? "" : " " + scope.scene) +
                            (scope.shot.empty() ? "" : " " + scope.shot);
        return make_error(ErrorCode::budget_exceeded,
                          "budget: reserving " + std::to_string(r.amount_micro_usd) + " micro-USD for " + r.purpose +
                              " would take the " + label + " past its cap (" + std::to_string(spent.committed_micro_usd) +
                              " committed + " + std::to_string(spent.outstanding_micro_usd) + " reserved, cap " +
                              std::to_string(*scope.cap) + ")");
      }
    }
    return ok();
  }

  Result<std::vector<Event>> commit(std::vector<EventDraft> drafts, Sync sync, const Reservation* reservation = nullptr,
                                    const Caps* caps = nullptr) {
    std::lock_guard<std::mutex> lock(mutex);
    if (mode != OpenMode::read_write) {
      return make_error(ErrorCode::unsupported, "internal error: ledger opened read-only");
    }
    std::vector<Event> committed;
    Head next = head;
    AVPS_TRY(db.exec("BEGIN IMMEDIATE"));
    auto fail = [&](Error e) -> Error {
      std::ignore = db.exec("ROLLBACK");  // the first error is the one to report
      return e;
    };
    if (reservation && caps) {
      if (Result<void> fits = check_caps(*reservation, *caps); !fits) {
        return fail(std::move(fits).error());
      }
    }
    // The project totals after this commit, applied only once it is durable.
    const bool moves_money = reservation != nullptr ||
                             std::any_of(drafts.begin(), drafts.end(),
                                         [](const EventDraft& d) { return d.reservation_end.has_value(); });
    const bool reports_money = budget_cap && std::any_of(drafts.begin(), drafts.end(), [](const EventDraft& d) {
                                 return d.row && (row_money(d.row->estimated_cost) || row_money(d.row->actual_cost));
                               });
    Spend totals_after;
    if (moves_money || reports_money) {
      Result<Spend> before = spend_of("", "");
      if (!before) {
        return fail(std::move(before).error());
      }
      totals_after = *before;
    }
    Stmt insert_reservation(db,
                            "INSERT INTO reservations(id, scene_id, shot_id, amount_micro_usd, purpose, event_seq) "
                            "VALUES (?,?,?,?,?,?)");
    Stmt insert_end(db,
                    "INSERT INTO reservation_ends(id, settled_micro_usd, released_micro_usd, provider_cost_micro_usd, "
                    "how, event_seq) VALUES (?,?,?,?,?,?)");
    Stmt reserved_amount(db, "SELECT amount_micro_usd, scene_id, shot_id FROM reservations WHERE id = ?");
    // How this commit moves each scene's and shot's spend, applied to the kept totals once durable.
    std::map<std::string, Spend> scene_moves;
    std::map<std::string, Spend> shot_moves;
    if (!insert_reservation.valid() || !insert_end.valid() || !reserved_amount.valid()) {
      return fail(db.error("cannot prepare ledger insert"));
    }
    Stmt insert_event(db, "INSERT INTO events(seq, run_id, ts, kind, body, prev_hash, hash) VALUES (?,?,?,?,?,?,?)");
    Stmt insert_artifact(db,
                         "INSERT INTO artifacts(name, kind, target, version, path, face_sha256, json_sha256, "
                         "author, producer, event_seq) VALUES (?,?,?,?,?,?,?,?,?,?)");
    if (!insert_event.valid() || !insert_artifact.valid()) {
      return fail(db.error("cannot prepare ledger insert"));
    }
    for (EventDraft& draft : drafts) {
      Event e;
      e.seq = next.seq + 1;
      e.run_id = run_id;
      e.timestamp = clock->now_iso8601();
      e.kind = draft.kind;
      e.body = std::move(draft.body);
      std::optional<int64_t> ended_amount;  // what the reservation this draft ends held
      std::string ended_scene;
      std::string ended_shot;
      if (draft.reservation_end) {
        reserved_amount.bind(1, draft.reservation_end->id);
        Result<bool> found = reserved_amount.step();
        if (!found || !*found) {
          return fail(make_error(ErrorCode::not_found, "no reservation " + draft.reservation_end->id + " to end"));
        }
        ended_amount = reserved_amount.integer(0);
        ended_scene = reserved_amount.text(1);
        ended_shot = reserved_amount.text(2);
        reserved_amount.reset();
      }
      if (draft.row) {
        LogRow row = *draft.row;
        if (row.run_id.empty()) {
          row.run_id = run_id;
        }
        if (row.timestamp.empty()) {
          row.timestamp = e.timestamp;
        }
        if (row.budget_pct.empty() && budget_cap && (row_money(row.estimated_cost) || row_money(row.actual_cost))) {
          // The project's spend (committed + reserved) once this event is in, against its cap:
          // BUDGET_STATUS's percent_of_budget_used, row by row.
          int64_t total = totals_after.total();
          if (reservation && committed.empty()) {
            total += reservation->amount_micro_usd;
          }
          if (ended_amount) {
            total += draft.reservation_end->settled_micro_usd - *ended_amount;
          }
          char pct[32];
          std::snprintf(pct, sizeof pct, "%.2f",
                        *budget_cap > 0 ? 100.0 * static_cast<double>(total) / static_cast<double>(*budget_cap) : 0.0);
          row.budget_pct = pct;
        }
        e.body["row"] = row.to_json();
      }
      if (draft.artifact) {
        e.body["artifact"] = draft.artifact->to_json();
      }
      if (reservation && committed.empty()) {
        e.body["reservation"] = reservation->to_json();
      }
      if (draft.reservation_end) {
        e.body["reservation_end"] = draft.reservation_end->to_json();
      }
      e.prev_hash = next.hash;
      Result<std::string> hash = event_hash(e.prev_hash, e.seq, e.run_id, e.timestamp, e.kind, e.body);
      if (!hash) {
        return fail(std::move(hash).error());
      }
      e.hash = *hash;
      Result<std::string> body_text = core::canonical_json(e.body);
      if (!body_text) {
        return fail(std::move(body_text).error());
      }
      insert_event.bind(1, e.seq);
      insert_event.bind(2, e.run_id);
      insert_event.bind(3, e.timestamp);
      insert_event.bind(4, e.kind);
      insert_event.bind(5, *body_text);
      insert_event.bind(6, e.prev_hash);
      insert_event.bind(7, e.hash);
      Result<bool> stepped = insert_event.step();
      if (!stepped) {
        return fail(std::move(stepped).error());
      }
      insert_event.reset();
      if (draft.artifact) {
        const ArtifactRecord& a = *draft.artifact;
        insert_artifact.bind(1, a.name);
        insert_artifact.bind(2, a.kind);
        insert_artifact.bind(3, a.target);
        insert_artifact.bind(4, static_cast<int64_t>(a.version));
        insert_artifact.bind(5, a.path);
        insert_artifact.bind(6, a.face_sha256);
        insert_artifact.bind(7, a.json_sha256);
        insert_artifact.bind(8, a.author);
        insert_artifact.bind(9, a.producer);
        insert_artifact.bind(10, e.seq);
        Result<bool> added = insert_artifact.step();
        if (!added) {
          return fail(make_error(ErrorCode::already_exists,
                                 "cannot index artifact " + a.name + ": " + added.error().message));
        }
        insert_artifact.reset();
      }
      if (reservation && committed.empty()) {
        insert_reservation.bind(1, reservation->id);
        insert_reservation.bind(2, reservation->scene_id);
        insert_reservation.bind(3, reservation->shot_id);
        insert_reservation.bind(4, reservation->amount_micro_usd);
        insert_reservation.bind(5, reservation->purpose);
        insert_reservation.bind(6, e.seq);
        if (Result<bool> added = insert_reservation.step(); !added) {
          return fail(make_error(ErrorCode::already_exists, "reservation " + reservation->id + " exists already"));
        }
        totals_after.outstanding_micro_usd += reservation->amount_micro_usd;
        if (!reservation->scene_id.empty()) {
          scene_moves[reservation->scene_id].outstanding_micro_usd += reservation->amount_micro_usd;
        }
        if (!reservation->shot_id.empty()) {
          shot_moves[reservation->shot_id].outstanding_micro_usd += reservation->amount_micro_usd;
        }
      }
      if (draft.reservation_end) {
        const ReservationEnd& end = *draft.reservation_end;
        const int64_t amount = *ended_amount;
        bool balanced = end.settled_micro_usd + end.released_micro_usd == amount;
        bool overrun = end.released_micro_usd == 0 && end.settled_micro_usd > amount;
        if (!balanced && !overrun) {
          return fail(make_error(ErrorCode::invalid_argument,
                                 "reservation " + end.id + " of " + std::to_string(amount) +
                                     " cannot end as settled " + std::to_string(end.settled_micro_usd) + " + released " +
                                     std::to_string(end.released_micro_usd)));
        }
        insert_end.bind(1, end.id);
        insert_end.bind(2, end.settled_micro_usd);
        insert_end.bind(3, end.released_micro_usd);
        if (end.provider_cost_micro_usd) {
          insert_end.bind(4, *end.provider_cost_micro_usd);
        }
        insert_end.bind(5, end.how);
        insert_end.bind(6, e.seq);
        if (Result<bool> added = insert_end.step(); !added) {
          return fail(make_error(ErrorCode::already_exists, "reservation " + end.id + " has already ended"));
        }
        insert_end.reset();
        totals_after.outstanding_micro_usd -= amount;
        totals_after.committed_micro_usd += end.settled_micro_usd;
        for (auto& [moves, key] : {std::pair{&scene_moves, ended_scene}, std::pair{&shot_moves, ended_shot}}) {
          if (!key.empty()) {
            (*moves)[key].outstanding_micro_usd -= amount;
            (*moves)[key].committed_micro_usd += end.settled_micro_usd;
          }
        }
      }
      next = Head{e.seq, e.hash};
      committed.push_back(std::move(e));
    }
    core::crash_point("ledger.before_commit");
    if (Result<void> done = db.exec("COMMIT"); !done) {
      project_spend.reset();  // whatever SQLite kept, the next read sums it afresh
      scene_spend.clear();
      shot_spend.clear();
      return std::move(done).error();
    }
    head = next;
    if (moves_money && mode == OpenMode::read_write) {
      project_spend = totals_after;
      // Only the totals already kept move; one not read yet is summed, this commit included, at
      // its first read.
      for (auto& [kept, moves] : {std::pair{&scene_spend, &scene_moves}, std::pair{&shot_spend, &shot_moves}}) {
        for (const auto& [key, move] : *moves) {
          if (auto known = kept->find(key); known != kept->end()) {
            known->second.outstanding_micro_usd += move.outstanding_micro_usd;
            known->second.committed_micro_usd += move.committed_micro_usd;
          }
        }
      }
    }
    for (const Event& e : committed) {
      if (std::optional<LogRow> row = e.row()) {
        unmirrored_rows += row_line(*row, e.hash);
      }
    }
    core::crash_point("ledger.after_commit");
    if (sync == Sync::now) {
      AVPS_TRY(sync_locked(/*force_mirrors=*/false));
    }
    return committed;
  }
};

SqliteLedger::SqliteLedger(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
SqliteLedger::~SqliteLedger() {
  if (m_impl && m_impl->mode == OpenMode::read_write) {
    std::ignore = flush();  // a failure leaves what a kill leaves: the next writing open completes it
  }
}

Result<std::unique_ptr<Ledger>> Ledger::create(const fs::path& project_dir, const core::Clock& clock) {
  fs::path path = ledger_path(project_dir);
  if (fs::exists(path)) {
    return make_error(ErrorCode::already_exists, "a ledger already exists at " + path.string());
  }
  auto impl = std::make_unique<SqliteLedger::Impl>();
  impl->project_dir = project_dir;
  impl->clock = &clock;
  impl->mode = OpenMode::read_write;
  AVPS_TRY(impl->take_writer_lock());
  // Built under a name of its own and published whole by a rename, with HEAD and the CSV face in
  // place before it: a kill leaves either no ledger.db (a new `avps init` starts over, removing
  // what the killed one left) or the complete one — never an empty or half-made ledger.db, which
  // every command refuses as evidence.
  const fs::path building = building_ledger_path(project_dir);
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ignored;
    fs::remove(building.string() + suffix, ignored);
  }
  AVPS_TRY(impl->db.open(building, /*create=*/true));
  AVPS_TRY(impl->configure());
  AVPS_TRY(impl->migrate());
  AVPS_TRY(impl->db.close());
  core::crash_point("ledger.create.built");
  // HEAD exists from the first moment, so a missing HEAD later always means tampering.
  AVPS_TRY(write_head(project_dir, Head{}));
  AVPS_TRY(core::create_directories_durable(run_log_path(project_dir).parent_path()));
  AVPS_TRY(core::write_file_atomic(run_log_path(project_dir), run_log_header(), core::Overwrite::yes,
                                   core::Durability::durable));
  core::crash_point("ledger.create.before_publish");
  std::error_code renamed;
  if (core::inject_fault(core::FaultOp::rename)) {
    renamed = std::make_error_code(std::errc::io_error);
  } else {
    fs::rename(building, path, renamed);
  }
  if (renamed) {
    return make_error(ErrorCode::io_error, "cannot publish the new ledger as " + path.string() + ": " + renamed.message());
  }
  AVPS_TRY(core::sync_directory(path.parent_path()));
  AVPS_TRY(impl->db.open(path, /*create=*/false));
  AVPS_TRY(impl->configure());
  AVPS_TRY(impl->load_head());
  impl->synced_seq = impl->head.seq;
  impl->mirrored_head = impl->head;
  return std::unique_ptr<Ledger>(new SqliteLedger(std::move(impl)));
}

Result<std::unique_ptr<Ledger>> Ledger::open(const fs::path& project_dir, OpenMode mode, const core::Clock& clock) {
  fs::path path = ledger_path(project_dir);
  if (!fs::exists(path)) {
    return make_error(ErrorCode::not_found, project_dir.string() + " is not an avps project (no .avps/ledger.db); "
                                                                   "create one with `avps init`");
  }
  auto impl = std::make_unique<SqliteLedger::Impl>();
  impl->project_dir = project_dir;
  impl->clock = &clock;
  impl->mode = mode;
  // A ledger is never made anew over a file that is there: an empty one (truncated, or replaced)
  // is evidence, reported and left as it is.
  std::error_code size_error;
  if (fs::file_size(path, size_error) == 0 && !size_error) {
    return make_error(ErrorCode::corruption, path.string() + " is empty (0 bytes): the ledger was truncated or "
                                                             "replaced; nothing was changed; restore it from a backup");
  }
  if (mode == OpenMode::read_write) {
    AVPS_TRY(impl->take_writer_lock());
  }
  if (mode == OpenMode::read_write) {
    AVPS_TRY(impl->db.open(path, /*create=*/false));
    AVPS_TRY(impl->check_identity());  // before configure() sets WAL mode: nothing written to a stranger
    AVPS_TRY(impl->configure());
  } else {
    // A reader sees one state for its whole life: the mirrors first, then one read transaction
    // (its snapshot is taken at the first read and holds until the ledger is closed), so the
    // mirrors can only lag what it reads, and every query agrees with every other.
    impl->snapshot_head = core::read_file(head_path(project_dir));
    impl->snapshot_run_log = std::make_unique<RunLogAsOpened>(project_dir);
    AVPS_TRY(impl->db.open_read_only(path));
    AVPS_TRY(impl->db.exec("BEGIN; SELECT count(*) FROM sqlite_master;"));
    AVPS_TRY(impl->check_identity());
  }
  AVPS_TRY(impl->migrate());
  AVPS_TRY(impl->load_head());
  if (mode == OpenMode::read_write) {
    // What a killed writer committed without a sync is in the page cache, not yet durable: synced
    // before anything (the mirrors first) relies on it.
    AVPS_TRY(impl->sync_log());
    impl->synced_seq = impl->head.seq;
    AVPS_TRY(impl->complete_mirrors());
    impl->mirrored_head = impl->head;
  }
  return std::unique_ptr<Ledger>(new SqliteLedger(std::move(impl)));
}

Result<std::unique_ptr<Ledger>> SqliteLedger::another_reader() const {
  if (m_impl->mode != OpenMode::read_only) {
    return std::unique_ptr<Ledger>();  // a writer's state moves: its readers share it
  }
  AVPS_TRY_ASSIGN(std::unique_ptr<Ledger> other, Ledger::open(m_impl->project_dir, OpenMode::read_only, *m_impl->clock));
  const Head mine = head();
  const Head theirs = other->head();
  if (theirs.seq != mine.seq || theirs.hash != mine.hash) {
    return std::unique_ptr<Ledger>();
  }
  // A small page cache: such a thread reads most pages once (events in order, objects by key),
  // and SQLite's 2 MB each were 5 MB of `avps gate`'s peak at 500 scenes for 0.1 s of its time.
  AVPS_TRY(static_cast<SqliteLedger&>(*other).m_impl->db.exec("PRAGMA cache_size = -256"));
  return other;
}

void SqliteLedger::set_budget_basis(int64_t project_cap_micro_usd) {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  m_impl->budget_cap = project_cap_micro_usd;
}

Result<std::string> SqliteLedger::begin_run(const std::string& command, const json& details) {
  std::string id;
  {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    if (!m_impl->run_count) {
      AVPS_TRY_ASSIGN(m_impl->run_count,
                      query_int(m_impl->db, "SELECT count(*) FROM events WHERE kind = 'run.started'"));
    }
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "RUN_%04lld", static_cast<long long>(*m_impl->run_count + 1));
    id = buffer;
    m_impl->run_id = id;
  }
  Result<Event> started = append(EventDraft{.kind = "run.started", .body = {{"command", command}, {"details", details}}});
  if (!started) {
    m_impl->run_id.clear();
    return std::move(started).error();
  }
  ++*m_impl->run_count;
  return id;
}

Result<void> SqliteLedger::end_run(const std::string& outcome, const json& details) {
  AVPS_TRY(append(EventDraft{.kind = "run.finished", .body = {{"outcome", outcome}, {"details", details}}}));
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  m_impl->run_id.clear();
  return m_impl->sync_locked(/*force_mirrors=*/true);
}

Result<void> SqliteLedger::sync() {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  if (m_impl->mode != OpenMode::read_write) {
    return ok();
  }
  return m_impl->sync_locked(/*force_mirrors=*/false);
}

Result<void> SqliteLedger::flush() {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  if (m_impl->mode != OpenMode::read_write) {
    return ok();
  }
  return m_impl->sync_locked(/*force_mirrors=*/true);
}

const std::string& SqliteLedger::run_id() const { return m_impl->run_id; }

Result<std::vector<Event>> SqliteLedger::commit(std::vector<EventDraft> drafts, Sync sync) {
  if (m_impl->run_id.empty()) {
    return make_error(ErrorCode::unsupported, "internal error: ledger append outside a run");
  }
  AVPS_TRY(pass_write_hold());
  return m_impl->commit(std::move(drafts), sync);
}

void Ledger::hold_writes(std::function<Result<void>()> gate) {
  std::lock_guard<std::mutex> lock(m_write_hold.mutex);
  m_write_hold.gate = std::move(gate);
  m_write_hold.failed.reset();
  m_write_hold.held = true;
}

void Ledger::open_writes() {
  std::lock_guard<std::mutex> lock(m_write_hold.mutex);
  m_write_hold.gate = nullptr;
  m_write_hold.failed.reset();
  m_write_hold.held = false;
}

Result<void> Ledger::pass_write_hold() {
  if (!m_write_hold.held) {
    return ok();
  }
  // The mutex is held while the gate runs: a write that comes meanwhile waits for its answer.
  std::lock_guard<std::mutex> lock(m_write_hold.mutex);
  if (m_write_hold.failed) {
    return *m_write_hold.failed;
  }
  if (m_write_hold.gate) {
    std::function<Result<void>()> gate = std::move(m_write_hold.gate);
    m_write_hold.gate = nullptr;
    if (Result<void> passed = gate(); !passed) {
      m_write_hold.failed = passed.error();
      return passed;
    }
  }
  m_write_hold.held = false;
  return ok();
}

Result<Event> Ledger::append(EventDraft draft, Sync sync) {
  std::vector<EventDraft> drafts;
  drafts.push_back(std::move(draft));
  AVPS_TRY_ASSIGN(std::vector<Event> events, commit(std::move(drafts), sync));
  return std::move(events.front());
}

Result<Event> SqliteLedger::reserve(const Reservation& reservation, const Caps& caps, EventDraft event) {
  if (m_impl->run_id.empty()) {
    return make_error(ErrorCode::unsupported, "internal error: ledger append outside a run");
  }
  if (reservation.amount_micro_usd < 0 || reservation.id.empty()) {
    return make_error(ErrorCode::invalid_argument, "a reservation needs an id and an amount >= 0");
  }
  AVPS_TRY(pass_write_hold());
  std::vector<EventDraft> drafts;
  drafts.push_back(std::move(event));
  AVPS_TRY_ASSIGN(std::vector<Event> events, m_impl->commit(std::move(drafts), Sync::deferred, &reservation, &caps));
  return std::move(events.front());
}

Result<Spend> SqliteLedger::spend(const std::string& scene_id, const std::string& shot_id) const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  return m_impl->spend_of(scene_id, shot_id);
}

Result<std::map<std::string, Spend>> SqliteLedger::spend_per(SpendScope scope) const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  // The two sums of Impl::sum_spend, grouped by the scope's column.
  const std::string column = scope == SpendScope::scene ? "r.scene_id" : "r.shot_id";
  const std::array<std::string, 2> sql = Impl::spend_sql(column + ", ", column + " != ''", " GROUP BY " + column);
  std::map<std::string, Spend> out;
  for (int pass = 0; pass < 2; ++pass) {
    Stmt stmt(m_impl->db, sql[pass].c_str());
    if (!stmt.valid()) {
      return m_impl->db.error("cannot read the budget");
    }
    for (;;) {
      AVPS_TRY_ASSIGN(bool has_row, stmt.step());
      if (!has_row) {
        break;
      }
      Spend& spend = out[stmt.text(0)];
      (pass == 0 ? spend.committed_micro_usd : spend.outstanding_micro_usd) = stmt.integer(1);
    }
  }
  return out;
}

Result<std::vector<Reservation>> SqliteLedger::open_reservations() const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  Stmt stmt(m_impl->db,
            "SELECT r.id, r.scene_id, r.shot_id, r.amount_micro_usd, r.purpose FROM reservations r "
            "LEFT JOIN reservation_ends e ON e.id = r.id WHERE e.id IS NULL ORDER BY r.event_seq");
  if (!stmt.valid()) {
    return m_impl->db.error("cannot read reservations");
  }
  std::vector<Reservation> out;
  for (;;) {
    AVPS_TRY_ASSIGN(bool has_row, stmt.step());
    if (!has_row) {
      return out;
    }
    out.push_back(Reservation{stmt.text(0), stmt.text(1), stmt.text(2), stmt.integer(3), stmt.text(4)});
  }
}

Result<Ledger::BudgetTotals> SqliteLedger::budget_totals() const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  BudgetTotals totals;
  AVPS_TRY_ASSIGN(totals.reserved, query_int(m_impl->db, "SELECT COALESCE(SUM(amount_micro_usd), 0) FROM reservations"));
  AVPS_TRY_ASSIGN(totals.settled, query_int(m_impl->db, "SELECT COALESCE(SUM(settled_micro_usd), 0) FROM reservation_ends"));
  AVPS_TRY_ASSIGN(totals.released,
                  query_int(m_impl->db, "SELECT COALESCE(SUM(released_micro_usd), 0) FROM reservation_ends"));
  AVPS_TRY_ASSIGN(totals.overrun,
                  query_int(m_impl->db,
                            "SELECT COALESCE(SUM(e.settled_micro_usd - r.amount_micro_usd), 0) FROM reservation_ends e "
                            "JOIN reservations r ON r.id = e.id WHERE e.settled_micro_usd > r.amount_micro_usd"));
  return totals;
}

Result<std::vector<Event>> Ledger::events(int64_t after_seq) const {
  EventQuery everything;
  everything.after_seq = after_seq;
  return events(everything);
}

Result<void> Ledger::each_event(EventQuery query, const std::function<Result<void>(Event&&)>& each,
                                size_t page_size) const {
  query.limit = page_size;
  for (;;) {
    AVPS_TRY_ASSIGN(std::vector<Event> page, events(query));
    const bool last = page.size() < page_size;
    const int64_t next = page.empty() ? query.after_seq : page.back().seq;
    for (Event& e : page) {
      AVPS_TRY(each(std::move(e)));
    }
    if (last) {
      return ok();
    }
    query.after_seq = next;
  }
}

Result<std::vector<Event>> SqliteLedger::events(const EventQuery& query) const {
  const std::unique_lock<std::mutex> lock = m_impl->lock_unless_reader();
  return m_impl->read_events(query.after_seq, query.limit > 0 ? static_cast<int64_t>(query.limit) : -1,
                             query.bodiless, query.kinds, query.members, query.bodies);
}

Result<std::vector<Event>> SqliteLedger::unfinished_intents() const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  // The index has every recorded name (its primary key), so an intent with an outcome costs one
  // look-up; only one without is matched against the (rare) abandonments after it. A body that is
  // not JSON is left out here and reported by verify().
  Stmt stmt(m_impl->db,
            "SELECT seq, run_id, ts, kind, body, prev_hash, hash FROM events AS i "
            "WHERE kind = 'artifact.intent' AND json_valid(body) "
            "AND NOT EXISTS (SELECT 1 FROM artifacts WHERE name = json_extract(i.body, '$.intent.name')) "
            "AND NOT EXISTS (SELECT 1 FROM events AS a WHERE a.kind = 'artifact.abandoned' AND a.seq > i.seq "
            "AND json_valid(a.body) AND json_extract(a.body, '$.name') = json_extract(i.body, '$.intent.name')) "
            "ORDER BY seq");
  if (!stmt.valid()) {
    return m_impl->db.error("cannot read ledger events");
  }
  std::vector<Event> out;
  for (;;) {
    AVPS_TRY_ASSIGN(bool has_row, stmt.step());
    if (!has_row) {
      return out;
    }
    Event e = event_without_body(stmt);
    AVPS_TRY_ASSIGN(e.body, Impl::body_members(stmt, -1, {}, e.seq));
    out.push_back(std::move(e));
  }
}

namespace {

ArtifactRecord artifact_from_row(const Stmt& stmt) {
  ArtifactRecord r;
  r.name = stmt.text(0);
  r.kind = stmt.text(1);
  r.target = stmt.text(2);
  r.version = static_cast<int>(stmt.integer(3));
  r.path = stmt.text(4);
  r.face_sha256 = stmt.text(5);
  r.json_sha256 = stmt.text(6);
  r.author = stmt.text(7);
  r.producer = stmt.text(8);
  r.event_seq = stmt.integer(9);
  return r;
}

constexpr const char* k_artifact_columns =
    "SELECT name, kind, target, version, path, face_sha256, json_sha256, author, producer, event_seq FROM artifacts";

}  // namespace

Result<std::vector<ArtifactRecord>> SqliteLedger::artifacts(int64_t after_event_seq) const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  // event_seq has no index: asked for what came after the head of the last call (the engine's
  // artifact index, after every commit), only the rows past that call's last rowid are read
  // instead of the whole table. Rows are never deleted (the triggers forbid it), so every row
  // added since has a larger rowid; event_seq > ? still decides which rows are returned.
  // No ORDER BY: SQLite would sort in a temporary b-tree whose set-up allocates a buffer at every
  // call (with the fastbins consolidated before it, a cost that grew with the run's heap), for
  // rows that come in recording order already. They are put in event_seq order below if not.
  const bool from_cursor = after_event_seq >= 0 && after_event_seq == m_impl->artifacts_cursor_seq;
  std::string sql = std::string(k_artifact_columns) + " WHERE event_seq > ?" + (from_cursor ? " AND rowid > ?" : "");
  Stmt stmt(m_impl->db, sql.c_str());
  if (!stmt.valid()) {
    return m_impl->db.error("cannot read the artifact index");
  }
  stmt.bind(1, after_event_seq);
  if (from_cursor) {
    stmt.bind(2, m_impl->artifacts_cursor_rowid);
  }
  std::vector<ArtifactRecord> out;
  for (;;) {
    AVPS_TRY_ASSIGN(bool has_row, stmt.step());
    if (!has_row) {
      break;
    }
    out.push_back(artifact_from_row(stmt));
  }
  auto by_event = [](const ArtifactRecord& a, const ArtifactRecord& b) { return a.event_seq < b.event_seq; };
  if (!std::is_sorted(out.begin(), out.end(), by_event)) {
    std::stable_sort(out.begin(), out.end(), by_event);
  }
  Stmt last(m_impl->db, "SELECT coalesce(max(rowid), 0) FROM artifacts");
  if (!last.valid()) {
    return m_impl->db.error("cannot read the artifact index");
  }
  AVPS_TRY_ASSIGN(bool has_last, last.step());
  if (has_last) {
    m_impl->artifacts_cursor_rowid = last.integer(0);
    m_impl->artifacts_cursor_seq = m_impl->head.seq;
  }
  return out;
}

Result<std::optional<ArtifactRecord>> SqliteLedger::find_artifact(const std::string& name) const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  std::string sql = std::string(k_artifact_columns) + " WHERE name = ?";
  Stmt stmt(m_impl->db, sql.c_str());
  if (!stmt.valid()) {
    return m_impl->db.error("cannot read the artifact index");
  }
  stmt.bind(1, name);
  AVPS_TRY_ASSIGN(bool has_row, stmt.step());
  if (!has_row) {
    return std::optional<ArtifactRecord>{};
  }
  return std::optional<ArtifactRecord>{artifact_from_row(stmt)};
}

Result<std::optional<ArtifactRecord>> SqliteLedger::latest_artifact(const std::string& kind,
                                                                    const std::string& target) const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  // artifacts_by_stem (kind, target, version) answers this without a scan.
  std::string sql = std::string(k_artifact_columns) + " WHERE kind = ? AND target = ? ORDER BY version DESC LIMIT 1";
  Stmt stmt(m_impl->db, sql.c_str());
  if (!stmt.valid()) {
    return m_impl->db.error("cannot read the artifact index");
  }
  stmt.bind(1, kind);
  stmt.bind(2, target);
  AVPS_TRY_ASSIGN(bool has_row, stmt.step());
  if (!has_row) {
    return std::optional<ArtifactRecord>{};
  }
  return std::optional<ArtifactRecord>{artifact_from_row(stmt)};
}

Head SqliteLedger::head() const {
  // A reader's head is fixed at its open: asked beside verify()'s pass (another_reader() on the
  // gate's record thread), it must not wait for the pass's end.
  const std::unique_lock<std::mutex> lock = m_impl->lock_unless_reader();
  return m_impl->head;
}

Result<void> SqliteLedger::copy_prefix(const fs::path& dst_project_dir, int64_t through_seq) const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  if (through_seq < 0 || through_seq > m_impl->head.seq) {
    return make_error(ErrorCode::invalid_argument, "the ledger has no event " + std::to_string(through_seq));
  }
  AVPS_TRY_ASSIGN(std::vector<Event> events, m_impl->read_events(0));
  events.resize(static_cast<size_t>(through_seq));
  const fs::path path = ledger_path(dst_project_dir);
  if (fs::exists(path)) {
    return make_error(ErrorCode::already_exists, "a ledger already exists at " + path.string());
  }
  {
    Db copy;
    AVPS_TRY(copy.open(path, /*create=*/true));
    sqlite3_backup* backup = sqlite3_backup_init(copy.get(), "main", m_impl->db.get(), "main");
    if (backup == nullptr) {
      return copy.error("cannot copy the ledger");
    }
    const int stepped = sqlite3_backup_step(backup, -1);
    sqlite3_backup_finish(backup);
    if (stepped != SQLITE_DONE) {
      return copy.error("cannot copy the ledger");
    }
    // The copy is ours to cut: the append-only triggers come off for the one transaction that
    // removes everything after the prefix, and go back on exactly as they were.
    std::vector<std::string> triggers;
    {
      Stmt stmt(copy, "SELECT sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name");
      if (!stmt.valid()) {
        return copy.error("cannot read the copy's triggers");
      }
      for (;;) {
        AVPS_TRY_ASSIGN(bool has_row, stmt.step());
        if (!has_row) {
          break;
        }
        triggers.push_back(stmt.text(0));
      }
    }
    std::string cut = "BEGIN IMMEDIATE;";
    for (const std::string& sql : triggers) {
      const size_t name_start = sql.find("TRIGGER ") + 8;
      cut += "DROP TRIGGER " + sql.substr(name_start, sql.find(' ', name_start) - name_start) + ";";
    }
    const std::string after = std::to_string(through_seq);
    // An open ledger has the current schema (older ones are refused or migrated at open).
    cut += "DELETE FROM reservation_ends WHERE event_seq > " + after + ";DELETE FROM reservations WHERE event_seq > " +
           after + ";";
    cut += "DELETE FROM artifacts WHERE event_seq > " + after + ";DELETE FROM events WHERE seq > " + after + ";";
    cut += "DELETE FROM objects WHERE after_seq >= " + after + ";";  // named by later events only
    for (const std::string& sql : triggers) {
      cut += sql + ";";
    }
    cut += "COMMIT;";
    AVPS_TRY(copy.exec(cut));
    AVPS_TRY(copy.exec("PRAGMA journal_mode=WAL"));
  }
  AVPS_TRY(write_head(dst_project_dir, events.empty() ? Head{} : Head{events.back().seq, events.back().hash}));
  AVPS_TRY(core::create_directories_durable(run_log_path(dst_project_dir).parent_path()));
  return core::write_file_atomic(run_log_path(dst_project_dir), render_run_log(events), core::Overwrite::yes,
                                 core::Durability::durable);
}

const fs::path& SqliteLedger::project_dir() const { return m_impl->project_dir; }

std::vector<core::Violation> SqliteLedger::verify(EventVisitor* also, const VerifiedPoint* since,
                                                 VerifiedPoint* reached) const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  if (m_impl->mode == OpenMode::read_write) {
    // The writer's own group is brought to disk first, so what it checks is everything it
    // committed. A failure here is not lost: the mirrors then lag, and that is reported below.
    std::ignore = m_impl->sync_locked(/*force_mirrors=*/true);
  }
  std::vector<core::Violation> out;
  auto add = [&](std::string rule, std::string subject, std::string message) {
    out.push_back(core::Violation{std::move(rule), std::move(subject), std::move(message)});
  };
  if (reached != nullptr) {
    *reached = VerifiedPoint{};
  }
  const Mirrors mirrors = m_impl->mirrors_to_verify();
  // The point the pass reaches (`reached`) is the last event's, with digests of the whole face and
  // of the tables up to it: taken as the point the pass starts from is checked, the face and the
  // tables read once for both.
  Result<int64_t> head_seq = reached != nullptr ? query_int(m_impl->db, "SELECT max(seq) FROM events") : 0;
  std::string tables_at_head;
  core::Sha256 face;
  // From a point that still holds, the events up to it are checked by their hashes alone, and
  // the tables and the face only past it (their part up to it is vouched for by its digests).
  // An unreadable ledger here is found again, and reported, by the pass below.
  int64_t after = 0;
  if (since != nullptr) {
    Result<bool> holds = m_impl->point_holds(*since, mirrors.run_log, face, head_seq ? *head_seq : 0,
                                             reached != nullptr && head_seq ? &tables_at_head : nullptr);
    after = holds && *holds ? since->seq : 0;
    if (after == 0) {
      face = core::Sha256();  // what point_holds hashed of the face is hashed again, from its start
      tables_at_head.clear();
    }
  }
  if (also != nullptr) {
    also->after_seq = after;
  }

  for (const char* trigger : k_required_triggers) {
    Stmt stmt(m_impl->db, "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?");
    stmt.bind(1, std::string(trigger));
    Result<bool> found = stmt.valid() ? stmt.step() : Result<bool>(false);
    if (!found || !*found) {
      add("ledger.append_only", ".avps/ledger.db",
          std::string("append-only trigger ") + trigger + " is missing: the ledger can be edited");
    }
  }

  // One pass over the events, none of them kept (the record can be far larger than memory
  // should be): the chain as it goes, and what the artifact index, the budget tables and the CSV
  // face must equal, gathered for the comparisons below (the budget rows and the face as digests
  // of their text: equal digests, equal text).
  std::string prev = k_genesis_hash;
  int64_t expected_seq = 1;
  Head last;
  // The artifact index, read beside the events in event order: an intact index equals the
  // artifact.recorded events row for row, so it is compared as the pass goes, neither list held
  // (at 500 scenes each was 11 MB); only when a row differs are both read whole, below, to say which.
  auto same_record = [](const ArtifactRecord& a, const ArtifactRecord& b) {
    auto fields = [](const ArtifactRecord& r) {
      return std::tie(r.event_seq, r.name, r.kind, r.target, r.version, r.path, r.face_sha256, r.json_sha256,
                      r.author, r.producer);
    };
    return fields(a) == fields(b);
  };
  Stmt index_rows(m_impl->db, (std::string(k_artifact_columns) + " WHERE event_seq > ? ORDER BY event_seq").c_str());
  std::optional<Error> index_unreadable;
  if (!index_rows.valid()) {
    index_unreadable = m_impl->db.error("cannot read the artifact index");
  } else {
    index_rows.bind(1, after);
  }
  bool index_differs = false;
  auto next_index_row = [&]() -> std::optional<ArtifactRecord> {
    Result<bool> has_row = index_rows.step();
    if (!has_row) {
      index_unreadable = has_row.error();
      return std::nullopt;
    }
    return *has_row ? std::optional<ArtifactRecord>(artifact_from_row(index_rows)) : std::nullopt;
  };
  core::Sha256 reserved_by_events;
  core::Sha256 ended_by_events;
  // The CSV face the events carry past what is vouched for: from a point, the rows after it (the
  // face's first `face_vouched` bytes were hashed by point_holds, and are not hashed again); else
  // the whole face, its header first.
  const size_t face_vouched = after > 0 ? since->run_log_bytes : 0;
  core::Sha256 expected_face;
  size_t expected_face_size = 0;
  auto add_face = [&](std::string_view text) {
    expected_face.update(text);
    expected_face_size += text.size();
  };
  if (after == 0) {
    add_face(run_log_header());
  }
  Result<void> scanned = m_impl->scan_event_parts(true, [&](Event&& e, bool hash_ok) -> Result<void> {
    // The chain: consecutive seqs, each prev_hash the previous hash, each hash recomputed. (The
    // subject is made only for a finding: this runs for every event of the record.)
    auto subject = [&] { return "ledger event " + std::to_string(e.seq); };
    if (e.seq != expected_seq) {
      add("ledger.chain", subject(),
          "expected event " + std::to_string(expected_seq) + " here: events " + std::to_string(expected_seq) +
              ".." + std::to_string(e.seq - 1) + " were removed");
    }
    if (e.prev_hash != prev) {
      add("ledger.chain", subject(), "prev_hash does not link to the previous event's hash");
    }
    if (!hash_ok) {
      add("ledger.hash", subject(), "content does not match its hash (kind " + e.kind + "): the row was edited");
    }
    prev = e.hash;
    expected_seq = e.seq + 1;
    last = Head{e.seq, e.hash};
    if (std::optional<ArtifactRecord> a = e.artifact()) {
      if (!index_unreadable && !index_differs) {
        std::optional<ArtifactRecord> indexed = next_index_row();
        index_differs = !index_unreadable && (!indexed || !same_record(*indexed, *a));
      }
    }
    for (auto [key, digest] :
         {std::pair{"reservation", &reserved_by_events}, std::pair{"reservation_end", &ended_by_events}}) {
      if (e.body.contains(key)) {
        json& row = e.body[key];
        if (row.is_object()) {
          row["seq"] = e.seq;
        }
        digest->update(row.dump() + "\n");
      }
    }
    if (std::optional<LogRow> row = e.row()) {
      add_face(row_line(*row, e.hash));
    }
    return ok();
  }, also, after);
  if (!scanned) {
    if (also != nullptr && !also->failed) {
      also->failed = scanned.error();  // it was not given every event
    }
    add("ledger.readable", ".avps/ledger.db", scanned.error().message);
    return out;
  }

  // The head mirror. (Of a reader, as read before its snapshot; the writer read it above.)
  Result<std::optional<Head>> mirrored = parse_head(mirrors.head);
  if (!mirrored) {
    add("ledger.head", ".avps/HEAD", mirrored.error().message);
  } else if (!*mirrored) {
    add("ledger.head", ".avps/HEAD", "missing: the ledger's tail cannot be checked");
  } else if ((*mirrored)->seq > last.seq) {
    add("ledger.head", ".avps/HEAD",
        "records event " + std::to_string((*mirrored)->seq) + " but the ledger ends at event " +
            std::to_string(last.seq) + ": the tail of the ledger was removed");
  } else if ((*mirrored)->seq == last.seq && (*mirrored)->hash != last.hash) {
    add("ledger.head", ".avps/HEAD", "does not match the ledger's last event " + std::to_string(last.seq));
  } else if ((*mirrored)->seq < last.seq) {
    add("ledger.head", ".avps/HEAD",
        "lags the ledger by " + std::to_string(last.seq - (*mirrored)->seq) +
            " event(s) (an interrupted commit, or events added by hand); a writing avps command "
            "completes it if the ledger is intact");
    out.back().transient = true;
  }

  // The artifact index must equal the artifact.recorded events (compared in the pass above; a row
  // the index has past the events' last is a difference too).
  if (!index_unreadable && !index_differs && next_index_row()) {
    index_differs = true;
  }
  std::vector<ArtifactRecord> from_events;
  Result<std::vector<ArtifactRecord>> indexed = [&]() -> Result<std::vector<ArtifactRecord>> {
    if (index_unreadable) {
      return *index_unreadable;
    }
    std::vector<ArtifactRecord> rows;
    if (!index_differs) {
      return rows;  // equal: nothing to look up
    }
    AVPS_TRY(m_impl->scan_event_parts(false, [&](Event&& e, bool) -> Result<void> {
      if (std::optional<ArtifactRecord> a = e.artifact()) {
        from_events.push_back(std::move(*a));
      }
      return ok();
    }));
    std::string sql = std::string(k_artifact_columns) + " ORDER BY event_seq";
    Stmt stmt(m_impl->db, sql.c_str());
    if (!stmt.valid()) {
      return m_impl->db.error("cannot read the artifact index");
    }
    for (;;) {
      AVPS_TRY_ASSIGN(bool has_row, stmt.step());
      if (!has_row) {
        return rows;
      }
      rows.push_back(artifact_from_row(stmt));
    }
  }();
  if (!indexed) {
    add("ledger.readable", ".avps/ledger.db", indexed.error().message);
  } else if (index_differs) {
    // Both lists are in event order, so an intact index equals the events row for row (above); the
    // rows that differ are found by set look-ups, each record as one comparable string.
    auto key = [](const ArtifactRecord& r) { return r.to_json().dump() + "@" + std::to_string(r.event_seq); };
    std::set<std::string> indexed_keys;
    std::set<std::string> event_keys;
    for (const ArtifactRecord& a : *indexed) {
      indexed_keys.insert(key(a));
    }
    for (const ArtifactRecord& b : from_events) {
      event_keys.insert(key(b));
    }
    for (const ArtifactRecord& a : *indexed) {
      if (!event_keys.count(key(a))) {
        add("ledger.index", "artifact index row " + a.name,
            "is not vouched for by any artifact.recorded event: the index was edited");
      }
    }
    for (const ArtifactRecord& b : from_events) {
      if (!indexed_keys.count(key(b))) {
        add("ledger.index", "artifact index row " + b.name,
            "recorded by ledger event " + std::to_string(b.event_seq) + " is missing from the index");
      }
    }
  }

  // Reservations and their ends must be exactly those the events vouch for: each row as the same
  // JSON text (parsed and dumped, so key order is nlohmann's on both sides), in event order.
  // (Past the point only, when there is one: `sql` ends "WHERE event_seq > ? ORDER BY ...".)
  auto table_rows = [&](const char* sql) -> std::string {
    core::Sha256 rows;
    Stmt stmt(m_impl->db, sql);
    if (stmt.valid()) {
      stmt.bind(1, after);
    }
    while (stmt.valid()) {
      Result<bool> has_row = stmt.step();
      if (!has_row || !*has_row) {
        break;
      }
      rows.update(json::parse(stmt.text(0)).dump() + "\n");
    }
    return rows.hex();
  };
  const std::string reserved = table_rows(
      "SELECT json_object('id', id, 'scene_id', scene_id, 'shot_id', shot_id, 'amount_micro_usd', amount_micro_usd, "
      "'purpose', purpose, 'seq', event_seq) FROM reservations WHERE event_seq > ? ORDER BY event_seq");
  const std::string ended = table_rows(
      "SELECT json_object('id', id, 'settled_micro_usd', settled_micro_usd, 'released_micro_usd', released_micro_usd, "
      "'provider_cost_micro_usd', provider_cost_micro_usd, 'how', how, 'seq', event_seq) FROM reservation_ends "
      "WHERE event_seq > ? ORDER BY event_seq");
  if (reserved != reserved_by_events.hex()) {
    add("ledger.budget", ".avps/ledger.db", "the reservations table differs from the budget.reserved events (edited)");
  }
  if (ended != ended_by_events.hex()) {
    add("ledger.budget", ".avps/ledger.db", "the reservation ends differ from the events that ended them (edited)");
  }

  // The CSV face must be exactly the rows the events carry (`expected_face`, hashed in the pass
  // above). Only when it is not is the expected text made, in a second pass, to say where.
  const Result<std::string>& actual = mirrors.run_log;
  std::string whole_face_sha256;  // of the face as it is, for `reached`
  bool face_matches = false;
  if (actual) {
    // (From a point that holds, the face is at least as long as its vouched part.)
    const std::string_view past = std::string_view(*actual).substr(std::min(face_vouched, actual->size()));
    const std::string past_sha256 = core::sha256_hex(past);
    face_matches = actual->size() == face_vouched + expected_face_size && past_sha256 == expected_face.hex();
    if (reached != nullptr && face_vouched > 0) {
      face.update(past);  // on from the vouched part point_holds gave it
      whole_face_sha256 = face.hex();
    } else if (reached != nullptr) {
      whole_face_sha256 = past_sha256;
    }
  }
  if (!actual) {
    add("run_log.face", k_run_log_relative, actual.error().message);
  } else if (!face_matches) {
    std::string expected = run_log_header();
    Result<void> rescanned = m_impl->scan_event_parts(false, [&](Event&& e, bool) -> Result<void> {
      if (std::optional<LogRow> row = e.row()) {
        expected += row_line(*row, e.hash);
      }
      return ok();
    });
    if (!rescanned) {
      add("ledger.readable", ".avps/ledger.db", rescanned.error().message);
      return out;
    }
    Result<std::vector<core::CsvRecord>> want = core::csv_parse(expected);
    Result<std::vector<core::CsvRecord>> have = core::csv_parse(*actual);
    std::string detail = "does not match the ledger";
    if (want && have) {
      size_t i = 0;
      while (i < want->size() && i < have->size() && (*want)[i] == (*have)[i]) {
        ++i;
      }
      if (i < want->size() && i < have->size()) {
        detail = "line " + std::to_string(i + 1) + " differs from the ledger (entry_hash " +
                 (want->at(i).empty() ? std::string("?") : want->at(i).back()) + ")";
      } else if (have->size() < want->size()) {
        detail = "ends after line " + std::to_string(have->size()) + "; the ledger has " +
                 std::to_string(want->size()) + " lines (rows removed, or a torn append)";
      } else if (have->size() > want->size()) {
        detail = "has " + std::to_string(have->size() - want->size()) +
                 " line(s) after the ledger's last row: rows were added by hand";
      } else {
        detail = "differs from the ledger in formatting";
      }
    } else if (!have) {
      detail = "is not valid CSV: " + have.error().message;
    }
    add("run_log.face", k_run_log_relative, detail);
    // Rows missing at the end, or a torn last one: what a writer leaves between its commit and
    // its append (and the next writing open completes).
    out.back().transient = actual->size() < expected.size() && expected.compare(0, actual->size(), *actual) == 0;
  }
  if (reached != nullptr && actual && last.seq > 0) {
    if (tables_at_head.empty() || !head_seq || *head_seq != last.seq) {
      Result<std::string> tables = m_impl->tables_digest(last.seq);
      if (!tables) {
        return out;  // no point: the caller keeps none
      }
      tables_at_head = std::move(tables).value();
    }
    *reached = VerifiedPoint{.seq = last.seq,
                             .hash = last.hash,
                             .run_log_bytes = actual->size(),
                             .run_log_sha256 = std::move(whole_face_sha256),
                             .tables_sha256 = std::move(tables_at_head)};
  }
  return out;
}

// --- Objects (schema 3) ---------------------------------------------------------------------

Result<std::string> SqliteLedger::put_object(std::string_view bytes) {
  AVPS_TRY(pass_write_hold());
  std::string sha256 = core::sha256_hex(bytes);
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  if (m_impl->mode != OpenMode::read_write) {
    return make_error(ErrorCode::unsupported, "internal error: ledger opened read-only");
  }
  // One statement, its own transaction; no sync (synchronous=NORMAL): durable with the next sync
  // of the log, before anything committed after it. OR IGNORE: the same bytes are stored once
  // (a conflict is no update, so the append-only triggers do not fire).
  Stmt insert(m_impl->db, "INSERT OR IGNORE INTO objects(sha256, bytes, after_seq) VALUES (?,?,?)");
  if (!insert.valid()) {
    return m_impl->db.error("cannot store an object in the ledger");
  }
  insert.bind(1, sha256);
  insert.bind_blob(2, bytes);
  insert.bind(3, m_impl->head.seq);
  if (Result<bool> stored = insert.step(); !stored) {
    return std::move(stored).error();
  }
  core::crash_point("ledger.after_object");
  return sha256;
}

Result<std::optional<std::string>> SqliteLedger::object(const std::string& sha256) const {
  const std::unique_lock<std::mutex> lock = m_impl->lock_unless_reader();
  Stmt stmt(m_impl->db, "SELECT bytes FROM objects WHERE sha256 = ?");
  if (!stmt.valid()) {
    return m_impl->db.error("cannot read the ledger's objects");
  }
  stmt.bind(1, sha256);
  AVPS_TRY_ASSIGN(bool has_row, stmt.step());
  if (!has_row) {
    return std::optional<std::string>{};
  }
  return std::optional<std::string>{stmt.blob(0)};
}

}  // namespace avps::ledger
