# journal.mk: the journal core's harness (test/journalmain), self-contained.
# Included by src/native/Makefile, or run on its own:
#   make -C src/native -f journal.mk journal-harness   build/journal/journalmain
#   make -C src/native -f journal.mk journal-asan      build/journal-asan/journalmain, and runs it
#                                                       (write, verify, sync, track) under ASan+UBSan
#   make -C src/native -f journal.mk journal-clean
# Every name is prefixed JOURNAL_/journal- so including it clashes with nothing.

JOURNAL_DIR    := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
JOURNAL_BUILD  := $(JOURNAL_DIR)/build/journal
JOURNAL_ABUILD := $(JOURNAL_DIR)/build/journal-asan
JOURNAL_CC     ?= gcc
JOURNAL_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread
JOURNAL_ASAN   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
JOURNAL_LIBS   := -lisal -lcbor -lcrypto -pthread
JOURNAL_SRCS   := capture.c activity.c journal.c journal_codec.c journal_scan.c test/journalmain.c test/journalmain_modes.c
JOURNAL_HDRS   := $(addprefix $(JOURNAL_DIR)/,capture.h activity.h journal.h test/journalmain.h)
JOURNAL_OBJS   := $(patsubst %.c,$(JOURNAL_BUILD)/%.o,$(notdir $(JOURNAL_SRCS)))
JOURNAL_AOBJS  := $(patsubst %.c,$(JOURNAL_ABUILD)/%.o,$(notdir $(JOURNAL_SRCS)))
JOURNAL_BIN    := $(JOURNAL_BUILD)/journalmain
JOURNAL_ABIN   := $(JOURNAL_ABUILD)/journalmain
JOURNAL_TMP    ?= /tmp/nat-j/asan

vpath %.c $(JOURNAL_DIR) $(JOURNAL_DIR)/test

.PHONY: journal-harness journal-asan journal-asan-build journal-clean

journal-harness: $(JOURNAL_BIN)

$(JOURNAL_BUILD)/%.o: %.c $(JOURNAL_HDRS)
	@mkdir -p $(JOURNAL_BUILD)
	$(JOURNAL_CC) $(JOURNAL_CFLAGS) -c $< -o $@

$(JOURNAL_BIN): $(JOURNAL_OBJS)
	$(JOURNAL_CC) $(JOURNAL_CFLAGS) -o $@ $^ $(JOURNAL_LIBS)

journal-asan-build: $(JOURNAL_ABIN)

$(JOURNAL_ABUILD)/%.o: %.c $(JOURNAL_HDRS)
	@mkdir -p $(JOURNAL_ABUILD)
	$(JOURNAL_CC) $(JOURNAL_CFLAGS) $(JOURNAL_ASAN) -c $< -o $@

$(JOURNAL_ABIN): $(JOURNAL_AOBJS)
	$(JOURNAL_CC) $(JOURNAL_CFLAGS) $(JOURNAL_ASAN) -o $@ $^ $(JOURNAL_LIBS)

# Runs every subcommand but bench under the sanitizers (leaks included).
journal-asan: $(JOURNAL_ABIN)
	rm -rf $(JOURNAL_TMP) && mkdir -p $(JOURNAL_TMP)
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1; \
	set -e; \
	$(JOURNAL_ABIN) write $(JOURNAL_TMP)/w g > $(JOURNAL_TMP)/write.out; \
	end=$$(awk '/^end /{print $$2, $$3}' $(JOURNAL_TMP)/write.out); \
	$(JOURNAL_ABIN) verify $(JOURNAL_TMP)/w $$end g; \
	if $(JOURNAL_ABIN) verify $(JOURNAL_TMP)/w 1 00000000000000000000000000000000 g 2>/dev/null; then echo "verify accepted a wrong end"; exit 1; fi; \
	$(JOURNAL_ABIN) sync $(JOURNAL_TMP)/s g > /dev/null; \
	$(JOURNAL_ABIN) track $(JOURNAL_TMP)/t g > /dev/null; \
	echo "journal-asan: write, verify, sync, track ran clean under ASan+UBSan"

journal-clean:
	rm -rf $(JOURNAL_BUILD) $(JOURNAL_ABUILD)
