// avps_fake_provider: the FakeProvider of tests/support/fake_provider.hpp as a program, for e2e
// scripts. It serves on 127.0.0.1 until SIGTERM, SIGINT or POST /shutdown, and prints nothing but
// errors. A script starts it with --port-file and waits for that file: it appears (atomically)
// only once the server listens.

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "support/fake_provider.hpp"

namespace {

int fail(const std::string& message) {
  std::cerr << "avps_fake_provider: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A loopback fake of the OpenAI, Anthropic and Gemini chat APIs, of the async video job APIs and of ComfyUI, answered by the avps sim."};
  std::string data_dir = AVPS_SOURCE_DATA_DIR;
  std::string project_dir;
  int port = 0;
  std::string port_file;
  avps::testing::FakeProviderKeys keys;
  std::string faults_text = "[]";
  std::string log_file;
  app.add_option("--data-dir", data_dir, "where skills/ and schemas/ live")->capture_default_str();
  app.add_option("--project", project_dir, "a project folder whose avps.json configures the sim");
  app.add_option("--port", port, "0 = a free port")->capture_default_str()->check(CLI::Range(0, 65535));
  app.add_option("--port-file", port_file, "written with the port once the server listens");
  app.add_option("--key-openai", keys.openai, "the expected OpenAI key (empty: no auth header)");
  app.add_option("--key-anthropic", keys.anthropic, "the expected Anthropic key (empty: no auth header)");
  app.add_option("--key-gemini", keys.gemini, "the expected Gemini key (empty: no auth header)");
  app.add_option("--key-jobs", keys.jobs, "the key every async job API and ComfyUI expect (empty: no auth header)");
  std::string job_faults_text = "[]";
  int64_t min_poll_interval_ms = 0;
  app.add_option("--job-faults", job_faults_text, "a JSON array of job fault rules (tests/support/fake_jobs.hpp)");
  app.add_option("--min-poll-interval-ms", min_poll_interval_ms, "a job poll sooner than this is counted too early");
  std::string render_cache;
  app.add_option("--render-cache", render_cache, "a folder where the job APIs keep renders across fakes");
  app.add_option("--faults", faults_text, "a JSON array of fault rules (see POST /control)");
  app.add_option("--log", log_file, "one JSON line per request");
  CLI11_PARSE(app, argc, argv);

  avps::testing::FakeProviderConfig config;
  config.data_dir = data_dir;
  config.keys = keys;
  config.port = port;
  config.log_file = log_file;
  config.shutdown_route = true;
  auto faults = avps::core::parse_json(faults_text, "--faults");
  if (!faults.ok()) {
    return fail(faults.error().message);
  }
  config.faults = *faults;
  auto job_faults = avps::core::parse_json(job_faults_text, "--job-faults");
  if (!job_faults.ok()) {
    return fail(job_faults.error().message);
  }
  config.job_faults = *job_faults;
  config.min_poll_interval_ms = min_poll_interval_ms;
  config.render_cache = render_cache;
  if (!project_dir.empty()) {
    std::filesystem::path file = std::filesystem::path(project_dir) / "avps.json";
    if (std::filesystem::exists(file)) {
      auto text = avps::core::read_file(file);
      if (!text.ok()) {
        return fail(text.error().message);
      }
      auto project = avps::core::parse_json(*text, file.string());
      if (!project.ok()) {
        return fail(project.error().message);
      }
      config.project = *project;
    }
  }

  // SIGINT and SIGTERM are blocked in every thread (the server's inherit this mask) and taken by
  // one waiting thread, which turns them into a shutdown request.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  avps::testing::FakeProvider provider(std::move(config));
  auto started = provider.start();
  if (!started.ok()) {
    return fail(started.error().message);
  }
  if (!port_file.empty()) {
    auto written = avps::core::write_file_atomic(port_file, std::to_string(provider.port()) + "\n",
                                                 avps::core::Overwrite::yes, avps::core::Durability::cached);
    if (!written.ok()) {
      provider.stop();
      return fail(written.error().message);
    }
  }
  std::thread signal_waiter([&] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    provider.request_shutdown();
  });
  provider.wait_for_shutdown();
  provider.stop();
  // Wakes the waiter if POST /shutdown ended the wait; if a signal did, this one stays blocked
  // and pending until exit.
  ::kill(::getpid(), SIGTERM);
  signal_waiter.join();
  return 0;
}
