%% @doc The native library: stubs replaced by the NIF when the module loads.
%%
%% Call the wrappers (`lasp_converge_crdt'), not these functions: each
%% operation has a normal-scheduler NIF that gives up with
%% `error:lasp_converge_dirty' past a small budget, and a `_dirty' twin that
%% runs on a dirty CPU scheduler; the wrappers pick.
-module(lasp_converge_nif).

-export([nif_info/0, term_path/0,
         crdt_new/1, crdt_types/0,
         crdt_merge/2, crdt_merge_dirty/2,
         crdt_merge_all/1, crdt_merge_all_dirty/1,
         crdt_equal/2, crdt_equal_dirty/2,
         crdt_is_inflation/2, crdt_is_inflation_dirty/2,
         crdt_is_strict_inflation/2, crdt_is_strict_inflation_dirty/2,
         crdt_is_bottom/1, crdt_is_bottom_dirty/1,
         crdt_query/1, crdt_query_dirty/1,
         crdt_delta/2, crdt_delta_dirty/2,
         crdt_mutate/3, crdt_mutate_dirty/3,
         crdt_delta_mutate/3, crdt_delta_mutate_dirty/3,
         crdt_merge_added/2, crdt_merge_added_dirty/2,
         crdt_mutate_delta/3, crdt_mutate_delta_dirty/3,
         tracker_new/1, tracker_set_members/3, tracker_clock_exact/2,
         tracker_clock_sample/5, tracker_tick/2,
         tracker_updated/6, tracker_updated_dirty/6, tracker_witness/5, tracker_witness_dirty/5, tracker_retained/1, tracker_records/1,
         tracker_finished_since/3, tracker_buckets/2,
         tracker_observed/4, tracker_observed_delta/4, tracker_observed_delta_normal/4, tracker_stats/1, tracker_divergence/1,
         tracker_json/1, tracker_reset/1, tracker_live/0]).
-export([sim_start/2, sim_cancel/1, sim_active/0]).
-export([replica_new/1, replica_live/0, replica_type/1, replica_is_keyed/1,
         replica_from_term/1, replica_from_term_dirty/1,
         replica_from_binary/1, replica_from_binary_dirty/1,
         replica_to_term/1, replica_to_term_dirty/1,
         replica_to_binary/1, replica_to_binary_dirty/1,
         replica_query/1, replica_query_dirty/1,
         replica_size/1, replica_size_dirty/1,
         replica_merge/2, replica_merge_dirty/2,
         replica_merge_added/3, replica_merge_added_dirty/3,
         replica_mutate/3, replica_mutate_dirty/3,
         replica_equal/2, replica_equal_dirty/2,
         replica_is_inflation/2, replica_is_inflation_dirty/2,
         replica_is_strict_inflation/2, replica_is_strict_inflation_dirty/2]).
-export([payload_merge/2, payload_merge_dirty/2,
         payload_compare/2, payload_compare_dirty/2,
         payload_mutate/4, payload_mutate_dirty/4]).

-on_load(init/0).

%% A convergence tracker resource (tracker_new/1).
-type tracker() :: reference().
-export_type([tracker/0]).

-define(LIB, "lasp_converge_nif").
-define(NOT_LOADED, erlang:nif_error({not_loaded, ?MODULE})).

%% @private
-spec init() -> ok | {error, term()}.
init() ->
    Path = filename:join(priv_dir(), ?LIB),
    case erlang:load_nif(Path, 0) of
        ok ->
            ok;
        {error, {reload, _}} ->
            ok;
        {error, Reason} ->
            error_logger:error_msg(
              "lasp_converge: cannot load the native library ~s.so: ~p~n"
              "Build it with `make nif` (or `rebar3 compile` / `mix compile`) "
              "from the project's root.~n", [Path, Reason]),
            {error, Reason}
    end.

priv_dir() ->
    case code:priv_dir(lasp_converge) of
        {error, bad_name} ->
            %% Not loaded as an application (e.g. `erl -pa ebin`): priv/ beside ebin/.
            Ebin = filename:dirname(code:which(?MODULE)),
            filename:join(filename:dirname(Ebin), "priv");
        Dir ->
            Dir
    end.

%% @doc Facts about the loaded library: `[{raw_layout, boolean()},
%% {raw_binary, boolean()}, {raw_bignum, boolean()}, {safe_terms,
%% boolean()}]': whether list and tuple reads, binary reads in comparisons,
%% and the size of bignums when a call weighs its inputs use the term
%% layout verified when the library loaded, and whether
%% `LASP_CONVERGE_SAFE_TERMS=1' turned all of them off.
-spec nif_info() -> [{atom(), boolean()}].
nif_info() -> ?NOT_LOADED.

%% @doc How the library reads terms: `fast' when lists, tuples, atoms and
%% small integers are read from the VM's term layout (verified when the
%% library loaded), `safe' when every read goes through the NIF API, as it
%% does when the VM was started with `LASP_CONVERGE_SAFE_TERMS=1' in its
%% environment. Both give the same answers; `fast' is quicker.
-spec term_path() -> fast | safe.
term_path() -> ?NOT_LOADED.
-spec crdt_new(atom()) -> term().
crdt_new(_) -> ?NOT_LOADED.
-spec crdt_types() -> [atom()].
crdt_types() -> ?NOT_LOADED.
-spec crdt_merge(term(), term()) -> term().
crdt_merge(_, _) -> ?NOT_LOADED.
-spec crdt_merge_dirty(term(), term()) -> term().
crdt_merge_dirty(_, _) -> ?NOT_LOADED.
-spec crdt_merge_all(list()) -> term().
crdt_merge_all(_) -> ?NOT_LOADED.
-spec crdt_merge_all_dirty(list()) -> term().
crdt_merge_all_dirty(_) -> ?NOT_LOADED.
-spec crdt_equal(term(), term()) -> boolean().
crdt_equal(_, _) -> ?NOT_LOADED.
-spec crdt_equal_dirty(term(), term()) -> boolean().
crdt_equal_dirty(_, _) -> ?NOT_LOADED.
-spec crdt_is_inflation(term(), term()) -> boolean().
crdt_is_inflation(_, _) -> ?NOT_LOADED.
-spec crdt_is_inflation_dirty(term(), term()) -> boolean().
crdt_is_inflation_dirty(_, _) -> ?NOT_LOADED.
-spec crdt_is_strict_inflation(term(), term()) -> boolean().
crdt_is_strict_inflation(_, _) -> ?NOT_LOADED.
-spec crdt_is_strict_inflation_dirty(term(), term()) -> boolean().
crdt_is_strict_inflation_dirty(_, _) -> ?NOT_LOADED.
-spec crdt_is_bottom(term()) -> boolean().
crdt_is_bottom(_) -> ?NOT_LOADED.
-spec crdt_is_bottom_dirty(term()) -> boolean().
crdt_is_bottom_dirty(_) -> ?NOT_LOADED.
-spec crdt_query(term()) -> term().
crdt_query(_) -> ?NOT_LOADED.
-spec crdt_query_dirty(term()) -> term().
crdt_query_dirty(_) -> ?NOT_LOADED.
-spec crdt_delta(term(), term()) -> term().
crdt_delta(_, _) -> ?NOT_LOADED.
-spec crdt_delta_dirty(term(), term()) -> term().
crdt_delta_dirty(_, _) -> ?NOT_LOADED.
-spec crdt_mutate(term(), term(), term()) -> term().
crdt_mutate(_, _, _) -> ?NOT_LOADED.
-spec crdt_mutate_dirty(term(), term(), term()) -> term().
crdt_mutate_dirty(_, _, _) -> ?NOT_LOADED.
-spec crdt_delta_mutate(term(), term(), term()) -> term().
crdt_delta_mutate(_, _, _) -> ?NOT_LOADED.
-spec crdt_delta_mutate_dirty(term(), term(), term()) -> term().
crdt_delta_mutate_dirty(_, _, _) -> ?NOT_LOADED.
-spec crdt_merge_added(term(), term()) -> {term(), term()}.
crdt_merge_added(_, _) -> ?NOT_LOADED.
-spec crdt_merge_added_dirty(term(), term()) -> {term(), term()}.
crdt_merge_added_dirty(_, _) -> ?NOT_LOADED.
-spec crdt_mutate_delta(term(), term(), term()) -> {ok, term(), term()} | {error, term()}.
crdt_mutate_delta(_, _, _) -> ?NOT_LOADED.
-spec crdt_mutate_delta_dirty(term(), term(), term()) -> {ok, term(), term()} | {error, term()}.
crdt_mutate_delta_dirty(_, _, _) -> ?NOT_LOADED.

%% Convergence tracker (native/lasp_converge_nif/src/tracker.rs). Call them
%% through `lasp_converge'; each returns `{error, Reason}' on bad input.
-spec tracker_new(map()) -> {ok, tracker()} | {error, term()}.
tracker_new(_) -> ?NOT_LOADED.
-spec tracker_set_members(tracker(), integer(), [non_neg_integer()]) -> ok | {error, term()}.
tracker_set_members(_, _, _) -> ?NOT_LOADED.
-spec tracker_clock_exact(tracker(), non_neg_integer()) -> ok | {error, term()}.
tracker_clock_exact(_, _) -> ?NOT_LOADED.
-spec tracker_clock_sample(tracker(), non_neg_integer(), integer(), integer(), integer()) ->
          {ok, map()} | {error, term()}.
tracker_clock_sample(_, _, _, _, _) -> ?NOT_LOADED.
-spec tracker_tick(tracker(), integer()) -> ok | {error, term()}.
tracker_tick(_, _) -> ?NOT_LOADED.
-spec tracker_updated(tracker(), non_neg_integer(), non_neg_integer(), integer(), term(), term()) ->
          {ok, new | finished | duplicate} | {error, term()}.
tracker_updated(_, _, _, _, _, _) -> ?NOT_LOADED.
-spec tracker_updated_dirty(tracker(), non_neg_integer(), non_neg_integer(), integer(), term(), term()) ->
          {ok, new | finished | duplicate} | {error, term()}.
tracker_updated_dirty(_, _, _, _, _, _) -> ?NOT_LOADED.
-spec tracker_witness(tracker(), non_neg_integer(), non_neg_integer(), integer(), term()) ->
          {ok, new | finished | duplicate} | {error, term()}.
tracker_witness(_, _, _, _, _) -> ?NOT_LOADED.
-spec tracker_witness_dirty(tracker(), non_neg_integer(), non_neg_integer(), integer(), term()) ->
          {ok, new | finished | duplicate} | {error, term()}.
tracker_witness_dirty(_, _, _, _, _) -> ?NOT_LOADED.
-spec tracker_records(tracker()) -> {ok, [map()]} | {error, term()}.
tracker_records(_) -> ?NOT_LOADED.
%% `{ok, Finished, Records}': the records of the updates finished after the
%% first `Since', only the unconverged ones unless `All' (see
%% native/lasp_converge_nif/src/tracker.rs).
-spec tracker_finished_since(tracker(), non_neg_integer(), boolean()) ->
          {ok, non_neg_integer(), [map()]} | {error, term()}.
tracker_finished_since(_, _, _) -> ?NOT_LOADED.
%% The histograms as cumulative counts at ascending bounds (microseconds).
-spec tracker_buckets(tracker(), [non_neg_integer()]) -> {ok, map()} | {error, term()}.
tracker_buckets(_, _) -> ?NOT_LOADED.
-spec tracker_retained(tracker()) -> {ok, #{atom() => non_neg_integer()}} | {error, term()}.
tracker_retained(_) -> ?NOT_LOADED.
-spec tracker_observed(tracker(), non_neg_integer(), integer(), term()) ->
          {ok, map()} | {error, term()}.
tracker_observed(_, _, _, _) -> ?NOT_LOADED.
-spec tracker_observed_delta(tracker(), non_neg_integer(), integer(), term()) ->
          {ok, map()} | {error, term()}.
tracker_observed_delta(_, _, _, _) -> ?NOT_LOADED.
%% As `tracker_observed_delta/4' on the normal scheduler, for a small delta
%% of a node whose state is held keyed; raises `lasp_converge_dirty'
%% otherwise (or while another call holds the tracker).
-spec tracker_observed_delta_normal(tracker(), non_neg_integer(), integer(), term()) ->
          {ok, map()} | {error, term()}.
tracker_observed_delta_normal(_, _, _, _) -> ?NOT_LOADED.
-spec tracker_stats(tracker()) -> {ok, map()} | {error, term()}.
tracker_stats(_) -> ?NOT_LOADED.
-spec tracker_divergence(tracker()) -> {ok, [map()]} | {error, term()}.
tracker_divergence(_) -> ?NOT_LOADED.
-spec tracker_json(tracker()) -> {ok, binary()} | {error, term()}.
tracker_json(_) -> ?NOT_LOADED.
-spec tracker_reset(tracker()) -> ok | {error, term()}.
tracker_reset(_) -> ?NOT_LOADED.
%% How many tracker resources exist in this VM (for the lifetime test).
-spec tracker_live() -> non_neg_integer().
tracker_live() -> ?NOT_LOADED.

%% Gossip simulator (native/lasp_converge_nif/src/sim.rs): the spec is
%% decoded on a dirty CPU scheduler, the run goes to a thread of its own and
%% its result comes as `{Tag, Result}'. The caller's death or the run
%% handle's collection cancels it. Call lasp_converge_sim:run/1,2.
-spec sim_start(map(), reference()) -> {ok, reference()} | {error, term()}.
sim_start(_, _) -> ?NOT_LOADED.
%% `sent' when the result was already sent, else `ok'.
-spec sim_cancel(reference()) -> ok | sent.
sim_cancel(_) -> ?NOT_LOADED.
%% Simulation threads alive in this VM (computing or waiting for a turn).
-spec sim_active() -> non_neg_integer().
sim_active() -> ?NOT_LOADED.

%% Resident replicas (native/lasp_converge_nif/src/replica.rs). Call
%% lasp_converge_replica, which picks the normal or the `_dirty' twin.
-spec replica_new(atom()) -> reference().
replica_new(_) -> ?NOT_LOADED.
%% How many replica resources exist in this VM (for the lifetime test).
-spec replica_live() -> non_neg_integer().
replica_live() -> ?NOT_LOADED.
-spec replica_type(reference()) -> atom().
replica_type(_) -> ?NOT_LOADED.
-spec replica_is_keyed(reference()) -> boolean().
replica_is_keyed(_) -> ?NOT_LOADED.
-spec replica_from_term(term()) -> reference().
replica_from_term(_) -> ?NOT_LOADED.
-spec replica_from_term_dirty(term()) -> reference().
replica_from_term_dirty(_) -> ?NOT_LOADED.
-spec replica_from_binary(binary()) -> reference().
replica_from_binary(_) -> ?NOT_LOADED.
-spec replica_from_binary_dirty(binary()) -> reference().
replica_from_binary_dirty(_) -> ?NOT_LOADED.
-spec replica_to_term(reference()) -> term().
replica_to_term(_) -> ?NOT_LOADED.
-spec replica_to_term_dirty(reference()) -> term().
replica_to_term_dirty(_) -> ?NOT_LOADED.
-spec replica_to_binary(reference()) -> binary().
replica_to_binary(_) -> ?NOT_LOADED.
-spec replica_to_binary_dirty(reference()) -> binary().
replica_to_binary_dirty(_) -> ?NOT_LOADED.
-spec replica_query(reference()) -> term().
replica_query(_) -> ?NOT_LOADED.
-spec replica_query_dirty(reference()) -> term().
replica_query_dirty(_) -> ?NOT_LOADED.
-spec replica_size(reference()) -> non_neg_integer().
replica_size(_) -> ?NOT_LOADED.
-spec replica_size_dirty(reference()) -> non_neg_integer().
replica_size_dirty(_) -> ?NOT_LOADED.
-spec replica_merge(reference(), term()) -> ok.
replica_merge(_, _) -> ?NOT_LOADED.
-spec replica_merge_dirty(reference(), term()) -> ok.
replica_merge_dirty(_, _) -> ?NOT_LOADED.
-spec replica_merge_added(reference(), term(), boolean()) ->
          unchanged | changed | {changed, term()}.
replica_merge_added(_, _, _) -> ?NOT_LOADED.
-spec replica_merge_added_dirty(reference(), term(), boolean()) ->
          unchanged | changed | {changed, term()}.
replica_merge_added_dirty(_, _, _) -> ?NOT_LOADED.
-spec replica_mutate(term(), term(), reference()) -> {ok, term()} | {error, term()}.
replica_mutate(_, _, _) -> ?NOT_LOADED.
-spec replica_mutate_dirty(term(), term(), reference()) -> {ok, term()} | {error, term()}.
replica_mutate_dirty(_, _, _) -> ?NOT_LOADED.
-spec replica_equal(term(), term()) -> boolean().
replica_equal(_, _) -> ?NOT_LOADED.
-spec replica_equal_dirty(term(), term()) -> boolean().
replica_equal_dirty(_, _) -> ?NOT_LOADED.
-spec replica_is_inflation(term(), term()) -> boolean().
replica_is_inflation(_, _) -> ?NOT_LOADED.
-spec replica_is_inflation_dirty(term(), term()) -> boolean().
replica_is_inflation_dirty(_, _) -> ?NOT_LOADED.
-spec replica_is_strict_inflation(term(), term()) -> boolean().
replica_is_strict_inflation(_, _) -> ?NOT_LOADED.
-spec replica_is_strict_inflation_dirty(term(), term()) -> boolean().
replica_is_strict_inflation_dirty(_, _) -> ?NOT_LOADED.
-spec payload_merge(binary(), binary()) -> {binary(), boolean()}.
payload_merge(_, _) -> ?NOT_LOADED.
-spec payload_merge_dirty(binary(), binary()) -> {binary(), boolean()}.
payload_merge_dirty(_, _) -> ?NOT_LOADED.
-spec payload_compare(binary(), binary()) -> {boolean(), boolean()}.
payload_compare(_, _) -> ?NOT_LOADED.
-spec payload_compare_dirty(binary(), binary()) -> {boolean(), boolean()}.
payload_compare_dirty(_, _) -> ?NOT_LOADED.
-spec payload_mutate(boolean(), term(), term(), binary()) -> binary() | undefined.
payload_mutate(_, _, _, _) -> ?NOT_LOADED.
-spec payload_mutate_dirty(boolean(), term(), term(), binary()) -> binary() | undefined.
payload_mutate_dirty(_, _, _, _) -> ?NOT_LOADED.
