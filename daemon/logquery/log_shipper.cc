#include "daemon/logquery/log_shipper.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <future>

#include "shared/logging.h"

namespace rs::logquery {
namespace {

// The rotated name of `path` (spdlog: raind.log -> raind.1.log).
std::string FirstRotation(const std::string& path) {
  size_t slash = path.rfind('/');
  size_t dot = path.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return path + ".1";
  return path.substr(0, dot) + ".1" + path.substr(dot);
}

// Reads [offset, offset + max) of `path` if its inode is `inode`, cut after the last newline.
std::string ReadLines(const std::string& path, ino_t inode, uint64_t offset, size_t max) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat st {};
  std::string out;
  if (::fstat(fd, &st) == 0 && st.st_ino == inode && static_cast<uint64_t>(st.st_size) > offset) {
    out.resize(std::min<uint64_t>(max, static_cast<uint64_t>(st.st_size) - offset));
    ssize_t n = ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    size_t nl = out.rfind('\n');
    out.resize(nl == std::string::npos ? 0 : nl + 1);
  }
  ::close(fd);
  return out;
}

}  // namespace

void LogShipper::Start() {
  struct stat st {};
  if (::stat(options_.log_path.c_str(), &st) == 0) inode_ = st.st_ino;
  offset_ = options_.start_offset;
  thread_ = std::thread([this] { Run(); });
}

void LogShipper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LogShipper::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait_for(lock, options_.interval, [this] { return stop_; });
    bool last = stop_;
    lock.unlock();
    ShipOnce();
    lock.lock();
    if (last) return;
  }
}

Status LogShipper::Call(bool create, const std::string& name, std::string data) {
  auto done = std::make_shared<std::promise<Status>>();
  auto future = done->get_future();
  auto cb = [done](Status st) { done->set_value(st); };
  if (create) {
    hydfs_->Create(name, std::move(data), cb, /*quiet=*/true);
  } else {
    hydfs_->Append(name, std::move(data), cb, /*quiet=*/true);
  }
  if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return Status::Timeout("HyDFS did not answer in 30 s");
  }
  return future.get();
}

void LogShipper::ShipOnce() {
  auto view = membership_->view();
  if (!view->in_cluster) return;
  std::string file = "logs/" + view->self.str();
  if (file != file_) {
    Status st = Call(/*create=*/true, file, "");
    if (!st.ok() && st.code() != StatusCode::kAlreadyExists) {
      Logger("logquery")->debug("event=ship_failed file={} error=\"{}\"", file, st.ToString());
      return;
    }
    file_ = file;
  }
  // The tracked file was rotated away: finish it from its new name, then start the new log.
  struct stat st {};
  if (::stat(options_.log_path.c_str(), &st) != 0) return;
  std::string batch;
  bool rotated = st.st_ino != inode_;
  if (!unshipped_.empty()) {
    // The same bytes as the failed append, so HyDFS can resume its append id: a longer batch
    // would be a new append, and a failed append that some replica committed would then show
    // its lines twice.
    Status shipped = Call(/*create=*/false, file_, unshipped_);
    if (!shipped.ok()) {
      Logger("logquery")
          ->debug("event=ship_failed file={} bytes={} error=\"{}\"", file_, unshipped_.size(),
                  shipped.ToString());
      if (shipped.code() == StatusCode::kNotFound) file_.clear();
      return;
    }
    offset_ += unshipped_.size();
    unshipped_.clear();
    return;  // a rotation is dealt with at the next interval
  }
  if (rotated)
    batch = ReadLines(FirstRotation(options_.log_path), inode_, offset_, options_.max_batch);
  if (!rotated) batch = ReadLines(options_.log_path, inode_, offset_, options_.max_batch);
  if (batch.empty() && !rotated) return;
  if (!batch.empty()) {
    Status shipped = Call(/*create=*/false, file_, batch);
    if (!shipped.ok()) {
      Logger("logquery")
          ->debug("event=ship_failed file={} bytes={} error=\"{}\"", file_, batch.size(),
                  shipped.ToString());
      if (shipped.code() == StatusCode::kNotFound) file_.clear();  // removed: create it again
      unshipped_ = std::move(batch);                               // the same bytes next time
      return;
    }
    offset_ += batch.size();
  }
  if (rotated && batch.size() < options_.max_batch) {
    inode_ = st.st_ino;  // the rotated file is done (its partial last line is lost, rarely)
    offset_ = 0;
  }
}

}  // namespace rs::logquery
