-- v_person_current_state, unchanged in meaning: the "recent" cut-off is now computed once per
-- query (OFFSET 0 stops the planner from inlining the subquery into every CASE that uses it).
CREATE OR REPLACE VIEW v_person_current_state AS
SELECT
    p.person_id,
    p.username,
    p.first_seen_at,
    p.last_seen_online_at,
    p.following,
    p.follower,
    p.following_checked_at,
    p.follower_checked_at,
    p.has_cbhours_trophy,
    p.cbhours_trophy_checked_at,
    p.watch,
    p.latest_image_id AS image_id,
    CASE m.display_name_source
         WHEN 'affiliate' THEN a.display_name
         WHEN 'cbhours' THEN c.display_name
         WHEN 'profile_cache' THEN pc.display_name
         WHEN 'followed_cams' THEN fc.display_name
         WHEN 'followers' THEN fo.display_name
         WHEN 'html_import' THEN hi.display_name END AS display_name,
    m.display_name_source,
    CASE m.display_name_source
         WHEN 'affiliate' THEN a.profile_at
         WHEN 'cbhours' THEN c.profile_at
         WHEN 'profile_cache' THEN pc.profile_at
         WHEN 'followed_cams' THEN fc.profile_at
         WHEN 'followers' THEN fo.profile_at
         WHEN 'html_import' THEN hi.profile_at END AS display_name_observed_at,
    CASE m.age_source
         WHEN 'affiliate' THEN a.age
         WHEN 'cbhours' THEN c.age
         WHEN 'profile_cache' THEN pc.age
         WHEN 'followed_cams' THEN fc.age
         WHEN 'followers' THEN fo.age
         WHEN 'html_import' THEN hi.age END AS age,
    m.age_source,
    CASE m.age_source
         WHEN 'affiliate' THEN a.profile_at
         WHEN 'cbhours' THEN c.profile_at
         WHEN 'profile_cache' THEN pc.profile_at
         WHEN 'followed_cams' THEN fc.profile_at
         WHEN 'followers' THEN fo.profile_at
         WHEN 'html_import' THEN hi.profile_at END AS age_observed_at,
    CASE m.birthday_source
         WHEN 'affiliate' THEN a.birthday
         WHEN 'cbhours' THEN c.birthday
         WHEN 'profile_cache' THEN pc.birthday
         WHEN 'followed_cams' THEN fc.birthday
         WHEN 'followers' THEN fo.birthday
         WHEN 'html_import' THEN hi.birthday END AS birthday,
    m.birthday_source,
    CASE m.birthday_source
         WHEN 'affiliate' THEN a.profile_at
         WHEN 'cbhours' THEN c.profile_at
         WHEN 'profile_cache' THEN pc.profile_at
         WHEN 'followed_cams' THEN fc.profile_at
         WHEN 'followers' THEN fo.profile_at
         WHEN 'html_import' THEN hi.profile_at END AS birthday_observed_at,
    CASE m.gender_source
         WHEN 'affiliate' THEN a.gender
         WHEN 'cbhours' THEN c.gender
         WHEN 'profile_cache' THEN pc.gender
         WHEN 'followed_cams' THEN fc.gender
         WHEN 'followers' THEN fo.gender
         WHEN 'html_import' THEN hi.gender END AS gender,
    m.gender_source,
    CASE m.gender_source
         WHEN 'affiliate' THEN a.profile_at
         WHEN 'cbhours' THEN c.profile_at
         WHEN 'profile_cache' THEN pc.profile_at
         WHEN 'followed_cams' THEN fc.profile_at
         WHEN 'followers' THEN fo.profile_at
         WHEN 'html_import' THEN hi.profile_at END AS gender_observed_at,
    CASE m.location_source
         WHEN 'affiliate' THEN a.location
         WHEN 'cbhours' THEN c.location
         WHEN 'profile_cache' THEN pc.location
         WHEN 'followed_cams' THEN fc.location
         WHEN 'followers' THEN fo.location
         WHEN 'html_import' THEN hi.location END AS location,
    m.location_source,
    CASE m.location_source
         WHEN 'affiliate' THEN a.profile_at
         WHEN 'cbhours' THEN c.profile_at
         WHEN 'profile_cache' THEN pc.profile_at
         WHEN 'followed_cams' THEN fc.profile_at
         WHEN 'followers' THEN fo.profile_at
         WHEN 'html_import' THEN hi.profile_at END AS location_observed_at,
    CASE m.country_source
         WHEN 'affiliate' THEN a.country
         WHEN 'cbhours' THEN c.country
         WHEN 'profile_cache' THEN pc.country
         WHEN 'followed_cams' THEN fc.country
         WHEN 'followers' THEN fo.country
         WHEN 'html_import' THEN hi.country END AS country,
    m.country_source,
    CASE m.country_source
         WHEN 'affiliate' THEN a.profile_at
         WHEN 'cbhours' THEN c.profile_at
         WHEN 'profile_cache' THEN pc.profile_at
         WHEN 'followed_cams' THEN fc.profile_at
         WHEN 'followers' THEN fo.profile_at
         WHEN 'html_import' THEN hi.profile_at END AS country_observed_at,
    CASE m.spoken_languages_source
         WHEN 'affiliate' THEN a.spoken_languages
         WHEN 'cbhours' THEN c.spoken_languages
         WHEN 'profile_cache' THEN pc.spoken_languages
         WHEN 'followed_cams' THEN fc.spoken_languages
         WHEN 'followers' THEN fo.spoken_languages
         WHEN 'html_import' THEN hi.spoken_languages END AS spoken_languages,
    m.spoken_languages_source,
    CASE m.spoken_languages_source
         WHEN 'affiliate' THEN a.profile_at
         WHEN 'cbhours' THEN c.profile_at
         WHEN 'profile_cache' THEN pc.profile_at
         WHEN 'followed_cams' THEN fc.profile_at
         WHEN 'followers' THEN fo.profile_at
         WHEN 'html_import' THEN hi.profile_at END AS spoken_languages_observed_at,
    CASE m.live_source
         WHEN 'affiliate' THEN a.online
         WHEN 'cbhours' THEN c.online
         WHEN 'followed_cams' THEN fc.online
         WHEN 'followers' THEN fo.online
         WHEN 'html_import' THEN hi.online END AS online,
    CASE m.live_source
         WHEN 'affiliate' THEN a.current_show
         WHEN 'cbhours' THEN c.current_show
         WHEN 'followed_cams' THEN fc.current_show
         WHEN 'followers' THEN fo.current_show
         WHEN 'html_import' THEN hi.current_show END AS current_show,
    CASE m.live_source
         WHEN 'affiliate' THEN a.viewers
         WHEN 'cbhours' THEN c.viewers
         WHEN 'followed_cams' THEN fc.viewers
         WHEN 'followers' THEN fo.viewers
         WHEN 'html_import' THEN hi.viewers END AS viewers,
    CASE m.live_source
         WHEN 'affiliate' THEN a.subject
         WHEN 'cbhours' THEN c.subject
         WHEN 'followed_cams' THEN fc.subject
         WHEN 'followers' THEN fo.subject
         WHEN 'html_import' THEN hi.subject END AS subject,
    m.live_source,
    CASE m.live_source
         WHEN 'affiliate' THEN a.live_at
         WHEN 'cbhours' THEN c.live_at
         WHEN 'followed_cams' THEN fc.live_at
         WHEN 'followers' THEN fo.live_at
         WHEN 'html_import' THEN hi.live_at END AS live_observed_at,
    m.live_stale,
    CASE m.followers_source
         WHEN 'cbhours' THEN c.followers
         WHEN 'affiliate' THEN a.followers
         WHEN 'followed_cams' THEN fc.followers
         WHEN 'followers' THEN fo.followers
         WHEN 'html_import' THEN hi.followers END AS followers,
    m.followers_source,
    CASE m.followers_source
         WHEN 'cbhours' THEN c.followers_at
         WHEN 'affiliate' THEN a.followers_at
         WHEN 'followed_cams' THEN fc.followers_at
         WHEN 'followers' THEN fo.followers_at
         WHEN 'html_import' THEN hi.followers_at END AS followers_observed_at,
    m.followers_stale,
    CASE m.tags_source
         WHEN 'affiliate' THEN a.tags
         WHEN 'cbhours' THEN c.tags
         WHEN 'followed_cams' THEN fc.tags
         WHEN 'followers' THEN fo.tags
         WHEN 'html_import' THEN hi.tags END AS tags,
    m.tags_source,
    CASE m.tags_source
         WHEN 'affiliate' THEN a.tags_at
         WHEN 'cbhours' THEN c.tags_at
         WHEN 'followed_cams' THEN fc.tags_at
         WHEN 'followers' THEN fo.tags_at
         WHEN 'html_import' THEN hi.tags_at END AS tags_observed_at,
    m.tags_stale,
    CASE m.image_source
         WHEN 'affiliate' THEN a.image_url
         WHEN 'cbhours' THEN c.image_url
         WHEN 'profile_cache' THEN pc.image_url
         WHEN 'followed_cams' THEN fc.image_url
         WHEN 'followers' THEN fo.image_url
         WHEN 'html_import' THEN hi.image_url END AS image_url,
    m.image_source,
    CASE m.image_source
         WHEN 'affiliate' THEN a.image_at
         WHEN 'cbhours' THEN c.image_at
         WHEN 'profile_cache' THEN pc.image_at
         WHEN 'followed_cams' THEN fc.image_at
         WHEN 'followers' THEN fo.image_at
         WHEN 'html_import' THEN hi.image_at END AS image_observed_at,
    m.image_stale,    c.rank,
    c.grank,
    CASE WHEN c.rank_at IS NOT NULL THEN 'cbhours' END AS rank_source,
    c.rank_at AS rank_observed_at
FROM persons p
CROSS JOIN (
    SELECT now() - COALESCE(
        (SELECT value FROM roomwatch_settings WHERE key = 'recent_interval'), '10 minutes'
    )::interval AS at
    OFFSET 0  -- keeps "recent" one computed row instead of ~80 copies of its subquery
) k
LEFT JOIN person_source_latest a  ON a.person_id  = p.person_id AND a.source  = 'affiliate'
LEFT JOIN person_source_latest c  ON c.person_id  = p.person_id AND c.source  = 'cbhours'
LEFT JOIN person_source_latest pc ON pc.person_id = p.person_id AND pc.source = 'profile_cache'
LEFT JOIN person_source_latest fc ON fc.person_id = p.person_id AND fc.source = 'followed_cams'
LEFT JOIN person_source_latest fo ON fo.person_id = p.person_id AND fo.source = 'followers'
LEFT JOIN person_source_latest hi ON hi.person_id = p.person_id AND hi.source = 'html_import'
CROSS JOIN LATERAL (
    SELECT
        CASE WHEN a.display_name IS NOT NULL THEN 'affiliate' WHEN c.display_name IS NOT NULL THEN 'cbhours' WHEN pc.display_name IS NOT NULL THEN 'profile_cache' WHEN fc.display_name IS NOT NULL THEN 'followed_cams' WHEN fo.display_name IS NOT NULL THEN 'followers' WHEN hi.display_name IS NOT NULL THEN 'html_import' END
            AS display_name_source,
        CASE WHEN a.age IS NOT NULL THEN 'affiliate' WHEN c.age IS NOT NULL THEN 'cbhours' WHEN pc.age IS NOT NULL THEN 'profile_cache' WHEN fc.age IS NOT NULL THEN 'followed_cams' WHEN fo.age IS NOT NULL THEN 'followers' WHEN hi.age IS NOT NULL THEN 'html_import' END
            AS age_source,
        CASE WHEN a.birthday IS NOT NULL THEN 'affiliate' WHEN c.birthday IS NOT NULL THEN 'cbhours' WHEN pc.birthday IS NOT NULL THEN 'profile_cache' WHEN fc.birthday IS NOT NULL THEN 'followed_cams' WHEN fo.birthday IS NOT NULL THEN 'followers' WHEN hi.birthday IS NOT NULL THEN 'html_import' END
            AS birthday_source,
        CASE WHEN a.gender IS NOT NULL THEN 'affiliate' WHEN c.gender IS NOT NULL THEN 'cbhours' WHEN pc.gender IS NOT NULL THEN 'profile_cache' WHEN fc.gender IS NOT NULL THEN 'followed_cams' WHEN fo.gender IS NOT NULL THEN 'followers' WHEN hi.gender IS NOT NULL THEN 'html_import' END
            AS gender_source,
        CASE WHEN a.location IS NOT NULL THEN 'affiliate' WHEN c.location IS NOT NULL THEN 'cbhours' WHEN pc.location IS NOT NULL THEN 'profile_cache' WHEN fc.location IS NOT NULL THEN 'followed_cams' WHEN fo.location IS NOT NULL THEN 'followers' WHEN hi.location IS NOT NULL THEN 'html_import' END
            AS location_source,
        CASE WHEN a.country IS NOT NULL THEN 'affiliate' WHEN c.country IS NOT NULL THEN 'cbhours' WHEN pc.country IS NOT NULL THEN 'profile_cache' WHEN fc.country IS NOT NULL THEN 'followed_cams' WHEN fo.country IS NOT NULL THEN 'followers' WHEN hi.country IS NOT NULL THEN 'html_import' END
            AS country_source,
        CASE WHEN a.spoken_languages IS NOT NULL THEN 'affiliate' WHEN c.spoken_languages IS NOT NULL THEN 'cbhours' WHEN pc.spoken_languages IS NOT NULL THEN 'profile_cache' WHEN fc.spoken_languages IS NOT NULL THEN 'followed_cams' WHEN fo.spoken_languages IS NOT NULL THEN 'followers' WHEN hi.spoken_languages IS NOT NULL THEN 'html_import' END
            AS spoken_languages_source,
        CASE WHEN a.live_at >= k.at THEN 'affiliate'
             WHEN c.live_at >= k.at THEN 'cbhours'
             WHEN fc.live_at >= k.at THEN 'followed_cams'
             WHEN fo.live_at >= k.at THEN 'followers'
             WHEN hi.live_at >= k.at THEN 'html_import'
             ELSE CASE GREATEST(a.live_at, c.live_at, fc.live_at, fo.live_at, hi.live_at)
                  WHEN a.live_at THEN 'affiliate'
                  WHEN c.live_at THEN 'cbhours'
                  WHEN fc.live_at THEN 'followed_cams'
                  WHEN fo.live_at THEN 'followers'
                  WHEN hi.live_at THEN 'html_import' END END AS live_source,
        GREATEST(a.live_at, c.live_at, fc.live_at, fo.live_at, hi.live_at) < k.at AS live_stale,
        CASE WHEN c.followers_at >= k.at THEN 'cbhours'
             WHEN a.followers_at >= k.at THEN 'affiliate'
             WHEN fc.followers_at >= k.at THEN 'followed_cams'
             WHEN fo.followers_at >= k.at THEN 'followers'
             WHEN hi.followers_at >= k.at THEN 'html_import'
             ELSE CASE GREATEST(c.followers_at, a.followers_at, fc.followers_at, fo.followers_at, hi.followers_at)
                  WHEN c.followers_at THEN 'cbhours'
                  WHEN a.followers_at THEN 'affiliate'
                  WHEN fc.followers_at THEN 'followed_cams'
                  WHEN fo.followers_at THEN 'followers'
                  WHEN hi.followers_at THEN 'html_import' END END AS followers_source,
        GREATEST(c.followers_at, a.followers_at, fc.followers_at, fo.followers_at, hi.followers_at) < k.at AS followers_stale,
        CASE WHEN a.tags_at >= k.at THEN 'affiliate'
             WHEN c.tags_at >= k.at THEN 'cbhours'
             WHEN fc.tags_at >= k.at THEN 'followed_cams'
             WHEN fo.tags_at >= k.at THEN 'followers'
             WHEN hi.tags_at >= k.at THEN 'html_import'
             ELSE CASE GREATEST(a.tags_at, c.tags_at, fc.tags_at, fo.tags_at, hi.tags_at)
                  WHEN a.tags_at THEN 'affiliate'
                  WHEN c.tags_at THEN 'cbhours'
                  WHEN fc.tags_at THEN 'followed_cams'
                  WHEN fo.tags_at THEN 'followers'
                  WHEN hi.tags_at THEN 'html_import' END END AS tags_source,
        GREATEST(a.tags_at, c.tags_at, fc.tags_at, fo.tags_at, hi.tags_at) < k.at AS tags_stale,
        CASE WHEN a.image_at >= k.at THEN 'affiliate'
             WHEN c.image_at >= k.at THEN 'cbhours'
             WHEN pc.image_at >= k.at THEN 'profile_cache'
             WHEN fc.image_at >= k.at THEN 'followed_cams'
             WHEN fo.image_at >= k.at THEN 'followers'
             WHEN hi.image_at >= k.at THEN 'html_import'
             ELSE CASE GREATEST(a.image_at, c.image_at, pc.image_at, fc.image_at, fo.image_at, hi.image_at)
                  WHEN a.image_at THEN 'affiliate'
                  WHEN c.image_at THEN 'cbhours'
                  WHEN pc.image_at THEN 'profile_cache'
                  WHEN fc.image_at THEN 'followed_cams'
                  WHEN fo.image_at THEN 'followers'
                  WHEN hi.image_at THEN 'html_import' END END AS image_source,
        GREATEST(a.image_at, c.image_at, pc.image_at, fc.image_at, fo.image_at, hi.image_at) < k.at AS image_stale
) m;
