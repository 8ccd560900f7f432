// The exchange's ticket path (src/engine/exchange.hpp) over a backend that answers renders with
// tickets: 64 jobs in flight on 4 workers, each ticket recorded before its first poll, the poll
// interval respected per job, and a resumed exchange that polls recorded tickets without
// submitting them again (after a Ctrl-C that kept the jobs, and after one that canceled them).

#include <sys/resource.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "../src/engine/exchange.hpp"
#include "avps/backends/comfyui.hpp"
#include "avps/backends/sim_backend.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/process.hpp"
#include "avps/governance/override.hpp"
#include "avps/project/project.hpp"
#include "support/fake_provider.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t k_interval_ms = 30;

// Renders as jobs: a ticket at submit, the sim's render after `polls_to_finish` polls. Records
// which threads called it, how many calls ran at once, and every poll's time per ticket.
class TicketBackend : public backends::Backend {
 public:
  explicit TicketBackend(std::shared_ptr<backends::SimBackend> sim) : m_sim(std::move(sim)) {}

  Result<backends::Submitted<backends::ModelResponse>> submit_model(const backends::ModelRequest&,
                                                                    backends::CallTrace&) override {
    return make_error(ErrorCode::unsupported, "renders only");
  }
  Result<backends::Submitted<backends::GenerationResult>> submit_generation(const backends::GenerationRequest& r,
                                                                            backends::CallTrace&) override {
    Busy busy(*this);
    std::lock_guard<std::mutex> lock(m_mutex);
    const std::string ticket = "job-" + std::to_string(++submissions);
    m_requests[ticket] = r;
    m_polls[ticket];
    backends::Submitted<backends::GenerationResult> out;
    out.ticket = ticket;
    return out;
  }
  Result<std::optional<backends::GenerationResult>> poll_generation(const std::string& ticket,
                                                                    backends::CallTrace&) override {
    Busy busy(*this);
    if (poll_takes_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_takes_ms));  // a slow provider
    }
    std::unique_lock<std::mutex> lock(m_mutex);
    std::vector<Clock::time_point>& times = m_polls[ticket];
    times.push_back(Clock::now());
    if (!finishing || static_cast<int>(times.size()) < polls_to_finish) {
      return std::optional<backends::GenerationResult>();
    }
    if (auto failing = failures.find(m_requests.at(ticket).shot_id); failing != failures.end()) {
      return failing->second;
    }
    const backends::GenerationRequest request = m_requests.at(ticket);
    lock.unlock();
    AVPS_TRY_ASSIGN(backends::GenerationResult made, m_sim->generate(request));
    return std::optional<backends::GenerationResult>(std::move(made));
  }
  Result<void> cancel_generation(const std::string&, backends::CallTrace&) override {
    ++cancels;
    return ok();
  }
  backends::JobTiming job_timing() const override { return {k_interval_ms, 60'000}; }
  bool poll_errors_end_jobs() const override { return errors_end_jobs; }

  // The shortest gap between two polls of one ticket, or between its submit and its first poll.
  int64_t shortest_poll_gap_ms() {
    std::lock_guard<std::mutex> lock(m_mutex);
    int64_t shortest = 1 << 30;
    for (const auto& [ticket, times] : m_polls) {
      for (size_t i = 1; i < times.size(); ++i) {
        shortest = std::min<int64_t>(
            shortest, std::chrono::duration_cast<std::chrono::milliseconds>(times[i] - times[i - 1]).count());
      }
    }
    return shortest;
  }

  std::atomic<int> submissions{0};
  std::atomic<int> cancels{0};
  std::atomic<int> max_at_once{0};
  std::set<std::thread::id> threads;
  bool finishing = true;
  int polls_to_finish = 3;
  int poll_takes_ms = 0;  ///< each poll holds its worker this long
  std::map<std::string, Error> failures;  ///< by shot: its job's end at the finishing poll
  bool errors_end_jobs = false;

 private:
  struct Busy {
    explicit Busy(TicketBackend& b) : backend(b) {
      const int now = ++backend.m_at_once;
      int seen = backend.max_at_once.load();
      while (now > seen && !backend.max_at_once.compare_exchange_weak(seen, now)) {
      }
      std::lock_guard<std::mutex> lock(backend.m_mutex);
      backend.threads.insert(std::this_thread::get_id());
    }
    ~Busy() { --backend.m_at_once; }
    TicketBackend& backend;
  };

  std::shared_ptr<backends::SimBackend> m_sim;
  std::mutex m_mutex;
  std::atomic<int> m_at_once{0};
  std::map<std::string, backends::GenerationRequest> m_requests;
  std::map<std::string, std::vector<Clock::time_point>> m_polls;
};

struct Production {
  testing::TempDir tmp;
  testing::FixedClock clock;
  fs::path dir = tmp.path() / "film";
  std::shared_ptr<backends::SimBackend> sim;

  Production() {
    fs::copy(fs::path(AVPS_SOURCE_DATA_DIR) / "examples" / "demo_short_film", dir, fs::copy_options::recursive);
    auto config = core::parse_json(*core::read_file(dir / "avps.json"), "avps.json");
    REQUIRE(config.ok());
    (*config)["sim"] = {{"latency_ms", 0}, {"media", "image"}};
    std::ofstream(dir / "avps.json") << config->dump(2);
    auto created = project::Project::init(dir, "", {}, clock);
    REQUIRE(created.ok());
    auto made = backends::SimBackend::from_config((*created)->config().document);
    REQUIRE(made.ok());
    sim = std::move(made).value();
  }

  // One exchange over `backend` (of `kind`) for every model: `renders` renders of distinct shots
  // (64 by default), sent with 4 workers. `interrupt_after_tickets`: Ctrl-C once that many tickets
  // are recorded, with `policy`. `as_attempts`: each render is a shot's attempt
  // (Call::shot_attempt), as production sends them.
  Result<void> send_renders(const std::shared_ptr<backends::Backend>& backend, int interrupt_after_tickets = 0,
                            engine::InterruptPolicy policy = engine::InterruptPolicy::keep, int renders = 64,
                            const std::string& kind = "async_job", bool as_attempts = false) {
    AVPS_TRY_ASSIGN(auto project, project::Project::open(dir, ledger::OpenMode::read_write, {}, clock));
    AVPS_TRY_ASSIGN(auto models, governance::ModelsFile::load(project::data_dir(), dir, project->config()));
    std::map<std::string, std::shared_ptr<backends::Backend>, std::less<>> by_model;
    std::map<std::string, std::string, std::less<>> kinds;
    for (const governance::Model& m : models.models()) {
      by_model[m.id] = backend;
      kinds[m.id] = kind;
    }
    auto registry = backends::BackendRegistry::of(std::move(by_model), kinds);
    governance::Router router(std::move(models));
    AVPS_TRY_ASSIGN(auto overrides, governance::Overrides::read(project->ledger()));
    AVPS_TRY(project->ledger().begin_run("run", json::object()));
    const project::Budget configured = project->config().budget;
    governance::BudgetGovernor governor(project->ledger(), overrides.effective_budget(configured),
                                        [&overrides, configured](const std::string& scene, const std::string& shot) {
                                          return overrides.caps_for(configured, scene, shot);
                                        });
    AVPS_TRY_ASSIGN(engine::Record record, engine::read_record(project->ledger()));
    std::set<std::string> in_flight;
    for (const auto& [key, ticket] : record.tickets) {
      in_flight.insert(ticket.value("reservation_id", ""));
    }
    AVPS_TRY_ASSIGN(
        governance::BudgetGovernor::Reconciled reconciled,
        governor.reconcile_open_reservations([](const ledger::Reservation&) { return true; },
                                             [&](const ledger::Reservation& r) { return in_flight.count(r.id) > 0; }));
    std::ignore = reconciled;
    engine::RunOutcome outcome;
    engine::Exchange exchange(*project, router, governor, *registry, record, outcome);
    if (interrupt_after_tickets > 0) {
      exchange.on_interrupt(
          [&record, interrupt_after_tickets] {
            return static_cast<int>(record.tickets.size()) >= interrupt_after_tickets;
          },
          [policy] { return policy; });
    }
    std::vector<engine::Call> calls(static_cast<size_t>(renders));
    std::vector<engine::Call*> sent;
    for (size_t i = 0; i < calls.size(); ++i) {
      engine::Call& c = calls[i];
      const std::string shot = (i + 1 < 10 ? "S01_SH0" : "S01_SH") + std::to_string(i + 1);
      c.kind = engine::CallKind::generation;
      c.purpose = std::string("generate ") + shot + " proxy";
      c.scene_id = "S01";
      c.shot_id = shot;
      if (as_attempts) {
        c.shot_attempt = {{"shot_id", shot}, {"resolution", "proxy"}, {"attempt", 1}, {"inputs", "ident"}};
      }
      c.task = governance::Task::generation("C", governance::Resolution::proxy, "1920x816", 2000);
      c.task.tier = "gen_low";
      backends::GenerationRequest& r = c.generation_request;
      r.shot_id = shot;
      r.attempt = 1;
      r.genpack_face = std::string("GenPack: ") + shot;
      r.resolution = "proxy";
      r.pixels = "640x272";
      r.duration_s = 2;
      r.seed = 7;
      AVPS_TRY_ASSIGN(bool granted, exchange.prepare(c));
      REQUIRE(granted);
      sent.push_back(&c);
    }
    Result<void> result = exchange.send(sent, 4);
    std::ignore = project->ledger().end_run(result ? "DONE" : "ERROR", json::object());
    return result;
  }

  int count(const std::string& kind) {
    auto project = project::Project::open(dir, ledger::OpenMode::read_only, {}, clock);
    REQUIRE(project.ok());
    auto all = (*project)->ledger().events();
    REQUIRE(all.ok());
    return static_cast<int>(
        std::count_if(all->begin(), all->end(), [&](const ledger::Event& e) { return e.kind == kind; }));
  }

  int open_reservations() {
    auto project = project::Project::open(dir, ledger::OpenMode::read_only, {}, clock);
    REQUIRE(project.ok());
    auto open = (*project)->ledger().open_reservations();
    REQUIRE(open.ok());
    return static_cast<int>(open->size());
  }
};

}  // namespace

TEST_CASE("64 jobs in flight finish on 4 workers, each polled no sooner than its interval", "[exchange][jobs]") {
  Production film;
  auto backend = std::make_shared<TicketBackend>(film.sim);
  REQUIRE(film.send_renders(backend).ok());
  CHECK(backend->submissions == 64);
  CHECK(film.count("exchange.ticket") == 64);
  CHECK(film.count("exchange.response") == 64);
  CHECK(film.open_reservations() == 0);
  // Workers only: 64 jobs waiting cost no thread of their own.
  CHECK(backend->threads.size() <= 4);
  CHECK(backend->max_at_once <= 4);
  CHECK(backend->shortest_poll_gap_ms() >= k_interval_ms);
  // Sent again, every render is answered from the record: nothing submitted, nothing polled.
  auto again = std::make_shared<TicketBackend>(film.sim);
  REQUIRE(film.send_renders(again).ok());
  CHECK(again->submissions == 0);
}

// CPU time of the calling thread, where Exchange::send records what the workers bring back.
std::chrono::milliseconds thread_cpu() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return std::chrono::milliseconds(
      (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000);
}

TEST_CASE("while every worker is busy, jobs due for a poll wait without spinning the recorder", "[exchange][jobs]") {
  // 16 jobs on 4 workers whose polls take 60 ms each: most of the time every worker is busy and
  // other jobs are past their poll time. The recorder then sleeps until a worker brings something
  // back; it used to wait "until" a time already past, over and over, and burn a core meanwhile.
  Production film;
  auto backend = std::make_shared<TicketBackend>(film.sim);
  backend->poll_takes_ms = 60;
  const auto wall_start = Clock::now();
  const auto cpu_start = thread_cpu();
  REQUIRE(film.send_renders(backend, 0, engine::InterruptPolicy::keep, 16).ok());
  const auto cpu = thread_cpu() - cpu_start;
  const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - wall_start);
  CHECK(film.count("exchange.response") == 16);
  // The polls alone hold the workers for 16 * 3 * 60 ms / 4 = 720 ms; recording 16 jobs costs a
  // few ms of CPU. A spinning recorder would use about as much CPU as the wall time.
  INFO("recorder CPU " << cpu.count() << " ms over " << wall.count() << " ms");
  CHECK(wall >= std::chrono::milliseconds(700));
  CHECK(cpu * 3 < wall);
}

TEST_CASE("jobs kept on Ctrl-C are polled by the next exchange, never submitted again", "[exchange][jobs]") {
  Production film;
  auto first = std::make_shared<TicketBackend>(film.sim);
  first->finishing = false;
  auto interrupted = film.send_renders(first, 64, engine::InterruptPolicy::keep);
  REQUIRE(!interrupted.ok());
  CHECK(interrupted.error().code == ErrorCode::interrupted);
  CHECK(first->cancels == 0);
  const int submitted = first->submissions;
  CHECK(submitted == 64);
  CHECK(film.count("exchange.ticket") == 64);
  CHECK(film.open_reservations() == 64);  // each job's reservation stays open
  // The next run, the same provider: the same calls find their tickets and are polled to the end.
  first->finishing = true;
  REQUIRE(film.send_renders(first).ok());
  CHECK(first->submissions == submitted);
  CHECK(film.count("exchange.response") == 64);
  CHECK(film.count("budget.reconciled") == 0);
  CHECK(film.open_reservations() == 0);
}

TEST_CASE("jobs canceled on Ctrl-C are canceled at the provider and their reservations released", "[exchange][jobs]") {
  Production film;
  auto backend = std::make_shared<TicketBackend>(film.sim);
  backend->finishing = false;
  auto interrupted = film.send_renders(backend, 10, engine::InterruptPolicy::cancel);
  REQUIRE(!interrupted.ok());
  CHECK(interrupted.error().code == ErrorCode::interrupted);
  const int tickets = film.count("exchange.ticket");
  CHECK(tickets >= 10);
  CHECK(backend->submissions == tickets);  // nothing submitted after the interrupt went unrecorded
  CHECK(backend->cancels == tickets);
  CHECK(film.count("exchange.failed") == tickets);
  CHECK(film.open_reservations() == 0);
}

TEST_CASE("a job that ends without a render fails its shot's attempt, not the run", "[exchange][jobs]") {
  Production film;
  auto backend = std::make_shared<TicketBackend>(film.sim);
  backend->failures["S01_SH03"] = make_error(ErrorCode::rejected, "the provider failed the job");
  // A transient poll error leaves a job running (polled again) ...
  backend->failures["S01_SH05"] = make_error(ErrorCode::timeout, "recorded: past its maximum wait");
  SECTION("a render that is no shot's attempt: the run's error") {
    backend->failures.erase("S01_SH05");
    auto sent = film.send_renders(backend);
    REQUIRE(!sent.ok());
    CHECK(sent.error().message.find("the provider failed the job") != std::string::npos);
  }
  SECTION("a shot's attempt: recorded as that attempt's failure, the other renders answered") {
    backend->errors_end_jobs = true;  // ... unless the backend says its poll errors end jobs (a replay)
    REQUIRE(film.send_renders(backend, 0, engine::InterruptPolicy::keep, 64, "async_job", true).ok());
    CHECK(film.count("exchange.response") == 62);
    CHECK(film.count("exchange.failed") == 2);
    CHECK(film.open_reservations() == 0);
    auto project = project::Project::open(film.dir, ledger::OpenMode::read_only, {}, film.clock);
    REQUIRE(project.ok());
    auto record = engine::read_record((*project)->ledger());
    REQUIRE(record.ok());
    std::set<std::string> failed;
    for (const auto& [key, attempts] : record->shot_attempts) {
      for (const engine::FlatJson& kept : attempts) {
        const json attempt = *kept;
        CHECK(attempt.value("verdict", "") == "FAIL");
        CHECK(attempt.value("render_failed", false));
        CHECK(attempt.value("inputs", "") == "ident");
        failed.insert(key);
      }
    }
    CHECK(failed == std::set<std::string>{"S01_SH03/proxy", "S01_SH05/proxy"});
  }
}

TEST_CASE("a comfyui prompt that fails, never finishes, 404s or is not a video ends a failed attempt, released",
          "[exchange][jobs][comfyui]") {
  struct Case {
    std::string fault;
    std::string said;
  };
  const std::vector<Case> cases = {{"job_fails", "failed: node 3 (KSampler): RuntimeError"},
                                   {"never_finishes", "did not finish within its maximum wait"},
                                   {"output_404", "its output download answered HTTP 404"},
                                   {"not_video", "its output is not a video"}};
  for (const Case& c : cases) {
    INFO(c.fault);
    if (c.fault == "not_video" && !core::on_path("ffprobe")) {
      continue;  // only ffprobe can tell
    }
    testing::FakeProviderConfig fake_config;
    fake_config.data_dir = AVPS_SOURCE_DATA_DIR;
    fake_config.job_faults = json::array({{{"fault", c.fault}, {"preset", "comfyui"}}});
    testing::FakeProvider fake(fake_config);
    REQUIRE(fake.start().ok());
    const fs::path workflow = fs::path(AVPS_SOURCE_DATA_DIR) / "examples" / "comfyui" / "wan_t2v_api.json";
    auto options =
        backends::comfyui_options({{"workflow", workflow.string()},
                                   {"bindings", {{"prompt", {{"title", "Positive Prompt"}, {"input", "text"}}}}},
                                   {"poll", {{"interval_s", 0.03}, {"max_wait_s", 0.5}}}},
                                  "model");
    REQUIRE(options.ok());
    backends::ComfyUiConfig config;
    config.model_id = "wan";
    config.endpoint = fake.base_url();
    config.client_id = "avps-exchange-test";
    config.options = *options;
    auto loaded = backends::load_comfyui_workflow({}, *options, "model");
    REQUIRE(loaded.ok());
    config.workflow = *loaded;
    backends::CurlHttpClient client;
    auto comfy = std::make_shared<backends::ComfyUiBackend>(config, client);
    Production film;
    auto sent = film.send_renders(comfy, 0, engine::InterruptPolicy::keep, 1, "comfyui");
    REQUIRE(!sent.ok());
    CHECK_THAT(sent.error().message, Catch::Contains(c.said));
    CHECK(film.count("exchange.ticket") == 1);
    CHECK(film.count("exchange.failed") == 1);
    CHECK(film.count("exchange.response") == 0);
    CHECK(film.open_reservations() == 0);  // released with the failure, in one transaction
    const json stats = fake.stats()["jobs"];
    CHECK(stats["submissions"] == 1);
    CHECK(stats["invalid"] == 0);
    if (c.fault == "never_finishes") {
      CHECK(stats["cancels"] == 1);  // interrupted at the server before the attempt failed
      CHECK(stats["comfyui"]["interrupts"] == 1);
    }
  }
}
