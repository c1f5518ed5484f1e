// Unit tests for daemon/model/label.hpp: equal strings share one pool entry and compare by
// pointer, the empty string takes none, and entries leave the pool with their last Label, also
// when threads intern, copy and drop the same strings at once.
#include "model/label.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fabdns {
namespace {

static_assert(sizeof(Label) == sizeof(void *));

TEST(Label, EqualStringsShareOneEntry) {
    const size_t before = Label::pool_size();
    Label a("zone-a");
    Label b(std::string("zone-") + "a");
    Label c(std::string_view("zone-b"));
    EXPECT_EQ(Label::pool_size(), before + 2);
    EXPECT_TRUE(a == b);
    EXPECT_EQ(&a.str(), &b.str());  // one string, not two equal ones
    EXPECT_FALSE(a == c);
    EXPECT_EQ(a.str(), "zone-a");
    EXPECT_EQ(c.size(), 6u);

    Label copy = a;
    EXPECT_TRUE(copy == a);
    EXPECT_EQ(Label::pool_size(), before + 2);
    a = c;  // a now shares c's entry; copy and b still hold "zone-a"
    EXPECT_TRUE(a == c);
    EXPECT_EQ(copy, "zone-a");
}

TEST(Label, ComparesAndConcatenatesAsAString) {
    Label l("beijing");
    const std::string s = "beijing";
    EXPECT_TRUE(l == "beijing");
    EXPECT_TRUE(l == s);
    EXPECT_TRUE(s == l);
    EXPECT_TRUE(l == std::string_view("beijing"));
    EXPECT_TRUE(l != "shanghai");
    EXPECT_EQ(l + "/" + s, "beijing/beijing");
    EXPECT_EQ("c." + l, "c.beijing");
    EXPECT_EQ(s + l, "beijingbeijing");
    const std::string &ref = l;
    std::string_view view = l;
    EXPECT_EQ(ref, "beijing");
    EXPECT_EQ(view, "beijing");
    std::ostringstream out;
    out << l;
    EXPECT_EQ(out.str(), "beijing");
}

TEST(Label, EmptyStringTakesNoEntry) {
    const size_t before = Label::pool_size();
    Label a(""), b{std::string()}, c;
    EXPECT_EQ(Label::pool_size(), before);
    EXPECT_TRUE(a.empty());
    EXPECT_TRUE(a == c);
    EXPECT_TRUE(b == "");
    EXPECT_EQ(a.str(), "");
    EXPECT_FALSE(Label("x") == c);
}

TEST(Label, LastReferenceRemovesTheEntry) {
    const size_t before = Label::pool_size();
    {
        Label a("churn-0");
        Label b = a;
        Label moved = std::move(a);
        EXPECT_EQ(Label::pool_size(), before + 1);
    }
    EXPECT_EQ(Label::pool_size(), before);
    // A hostile hub sending a new zone name every poll: the pool does not grow.
    for (int i = 0; i < 10000; i++) {
        Label zone("random-zone-" + std::to_string(i));
        ASSERT_EQ(Label::pool_size(), before + 1);
    }
    EXPECT_EQ(Label::pool_size(), before);
}

// Threads intern the same few strings, copy them to each other and drop them, so that entries
// keep going from one reference to none and back: a lookup that finds an entry must never get
// one that is being deleted, equal live strings must stay one entry, and nothing is left after.
TEST(Label, ThreadsChurnSharedAndOwnStrings) {
    const size_t before = Label::pool_size();
    constexpr int kThreads = 4, kRounds = 20000;
    const std::vector<std::string> shared = {"edge", "central", "core", "north"};
    std::vector<Label> handoff(kThreads);  // each thread's last label, checked after the join
    std::mutex slot_mu;
    Label slot;  // passed between threads: the one dropping a label is not the one that made it
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kRounds; i++) {
                const std::string &text = shared[static_cast<size_t>(i + t) % shared.size()];
                Label a(text);
                Label b(text);
                if (!(a == b) || a != text) wrong++;
                Label copy = a;
                // A string of this thread alone, created and dropped at once.
                Label own("t" + std::to_string(t) + "-" + std::to_string(i));
                if (own.str() != "t" + std::to_string(t) + "-" + std::to_string(i)) wrong++;
                if (copy != text) wrong++;
                {
                    std::lock_guard lock(slot_mu);
                    std::swap(slot, copy);
                }
                // `copy` is now another thread's label (or empty), dropped here.
            }
            handoff[static_cast<size_t>(t)] = Label(shared[static_cast<size_t>(t) % 4]);
        });
    for (auto &th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0);
    for (int t = 0; t < kThreads; t++)
        EXPECT_TRUE(handoff[static_cast<size_t>(t)] ==
                    Label(shared[static_cast<size_t>(t) % shared.size()]));
    handoff.clear();
    slot = Label();
    EXPECT_EQ(Label::pool_size(), before);
}

}  // namespace
}  // namespace fabdns
